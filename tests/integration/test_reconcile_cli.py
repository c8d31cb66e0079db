"""``livecommerce migrate`` and ``livecommerce reconcile`` on a real embedded store (own directory,
driven in subprocesses: this test process may hold another chdb path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from base.settings import REPO_ROOT
from tests.fixtures.clickhouse import query_in_subprocess
from warehouse.rollups import raw_rollup_query, rollup_query, rounded

pytestmark = pytest.mark.integration

#: Inserts the same sample twice: the raw tables collapse the repeat, the rollup views count it twice,
#: which is what a sink replay after a crash does.
_INSERT_TWICE = """
import sys
from tests.integration.test_warehouse import sample_events
from warehouse.client import get_client
from warehouse.store import insert_events
client = get_client(sys.argv[1])
for _ in range(2):
    for tag, events in sample_events(seed=5, per_type=80).items():
        insert_events(client, tag, events, database="livecommerce")
"""


def cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_CLICKHOUSE_DSN": dsn, "LC_LOG_FORMAT": "console"}
    return subprocess.run([sys.executable, "-m", "livecommerce.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_migrate_is_idempotent_and_reconcile_repairs_a_double_counted_rollup(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    first = cli(dsn, "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied migrations [1, 2, 3]" in first.stdout
    again = cli(dsn, "migrate")
    assert again.returncode == 0 and "already up to date" in again.stdout

    done = subprocess.run([sys.executable, "-c", _INSERT_TWICE, dsn], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rollup, raw = (rounded(r) for r in query_in_subprocess(dsn, [rollup_query("livecommerce"),
                                                                   raw_rollup_query("livecommerce")]))
    assert raw and rollup != raw  # the repeat is counted twice by the views

    fixed = cli(dsn, "reconcile")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "rollup equals the raw tables" in fixed.stdout
    rollup, raw = (rounded(r) for r in query_in_subprocess(dsn, [rollup_query("livecommerce"),
                                                                   raw_rollup_query("livecommerce")]))
    assert rollup == raw

    one_room = cli(dsn, "reconcile", "--room", "room-1")
    assert one_room.returncode == 0 and "rollup equals the raw tables" in one_room.stdout
