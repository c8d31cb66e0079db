"""``livecommerce migrate`` and ``livecommerce reconcile`` on a real embedded store (own directory,
driven in subprocesses: this test process may hold another chdb path)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from base.settings import REPO_ROOT
from tests.fixtures.clickhouse import query_in_subprocess
from tests.integration.test_warehouse import sample_events
from warehouse.migrate import load_migrations
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
    assert f"applied migrations {[m.version for m in load_migrations()]}" in first.stdout
    again = cli(dsn, "migrate")
    assert again.returncode == 0 and "already up to date" in again.stdout

    done = subprocess.run([sys.executable, "-c", _INSERT_TWICE, dsn], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rollup, raw = (rounded(r) for r in query_in_subprocess(dsn, [rollup_query("livecommerce"),
                                                                   raw_rollup_query("livecommerce")]))
    assert raw and rollup != raw  # the repeat is counted twice by the views

    # the check reports what it found BEFORE anything is repaired (issue 14, failure 13): every
    # room-minute's comments counted twice, named with both values
    comments = Counter((e.room_id, e.ts // 60_000 * 60_000) for e in sample_events(seed=5, per_type=80)["comment"])  # type: ignore[attr-defined]
    expected = [f"{room} {dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%Y-%m-%d %H:%M} comments: rollup {2 * n}, "
                f"raw tables {n}" for (room, ms), n in sorted(comments.items())]
    check = cli(dsn, "reconcile", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "disagrees with the raw tables" in check.stdout and "rebuilt" not in check.stdout
    assert expected[0] in check.stdout  # the first room-minute, named with both values (20 are shown)
    assert int(check.stdout.split()[1]) >= len(expected)  # "found N figures ...": every doubled minute
    assert "scored_comments" not in check.stdout  # counted once per comment id even when inserted twice
    rollup_after_check = rounded(query_in_subprocess(dsn, [rollup_query("livecommerce")])[0])
    assert rollup_after_check == rollup  # --check repaired nothing

    fixed = cli(dsn, "reconcile")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert expected[0] in fixed.stdout
    assert fixed.stdout.index(expected[0]) < fixed.stdout.index("rebuilt")  # reported, then repaired
    assert "rollup equals the raw tables" in fixed.stdout.split("rebuilt", 1)[1]
    rollup, raw = (rounded(r) for r in query_in_subprocess(dsn, [rollup_query("livecommerce"),
                                                                   raw_rollup_query("livecommerce")]))
    assert rollup == raw

    one_room = cli(dsn, "reconcile", "--room", "room-1")
    assert one_room.returncode == 0 and "rollup equals the raw tables" in one_room.stdout
    assert cli(dsn, "reconcile", "--check").returncode == 0
