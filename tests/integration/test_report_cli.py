"""``livecommerce report`` as an operator runs it, against an embedded store that another process
(standing in for the sink) filled and, at first, still holds open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from base.settings import REPO_ROOT

pytestmark = pytest.mark.integration

_HOLDER = """
import random, sys
from base.settings import Settings
from tests.integration.test_report import DAY_MS, START, insert, make_stream
from warehouse.client import DEFAULT_DATABASE, get_client
from warehouse.migrate import migrate
from warehouse.pseudonym import Pseudonymiser

client = get_client(sys.argv[1])
migrate(client, DEFAULT_DATABASE)
ps = Pseudonymiser(Settings().pseudonym_secret)
streams = [make_stream(11, START, 12, ps, hostile=False), make_stream(12, START + DAY_MS, 12, ps, hostile=True)]
insert(client, DEFAULT_DATABASE, streams, random.Random(1))
print("ready", flush=True)
sys.stdin.read()  # hold the store until the test closes our stdin
"""


def _report(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_CLICKHOUSE_DSN": dsn, "LC_LOG_FORMAT": "console"}
    return subprocess.run([sys.executable, "-m", "livecommerce.cli", "report", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_report_command_refuses_a_held_store_then_writes_html_and_csv(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, dsn], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        busy = _report(dsn, "--room", "room-A", "--out", str(tmp_path / "r.html"))
        assert busy.returncode == 3, busy.stderr
        assert "open in another process" in busy.stderr and "http(s)://" in busy.stderr
        assert not (tmp_path / "r.html").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=120)
    assert holder.returncode == 0

    listed = _report(dsn, "--room", "room-A", "--list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["2026-01-01T00:00Z", "2026-01-02T00:00Z"]

    done = _report(dsn, "--room", "room-A", "--stream", "2026-01-02T00:00Z", "--out", str(tmp_path / "r.html"),
                   "--csv", str(tmp_path / "csv"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Post-stream report" in page and "stream 2026-01-01T00:00Z" in page  # the previous stream, side by side
    assert {p.name for p in (tmp_path / "csv").iterdir()} >= {"summary.csv", "minutes.csv", "skus.csv"}

    hostile = _report(dsn, "--room", "x'; DROP TABLE comments; --", "--out", str(tmp_path / "h.html"))
    assert hostile.returncode == 1 and "no recorded activity" in hostile.stderr
    bad_range = _report(dsn, "--room", "room-A", "--from", "2026-01-02T00:00Z")
    assert bad_range.returncode == 2 and "--from and --to" in bad_range.stderr
