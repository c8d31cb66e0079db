"""``livecommerce watch`` piped, with ``COLUMNS=80``, against a real broker: plain lines that fit 80
columns, no control codes, the rooms' values there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from base.settings import REPO_ROOT, Settings
from tests.integration.test_gateway import counters, produce

pytestmark = pytest.mark.integration

ROOMS = ("room-1", "a-rather-long-room-id-of-the-shop-2026")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # ESC (0x1b) and every other control code but \t \n


def test_watch_piped_at_80_columns_prints_plain_lines_that_fit(kafka_settings: Settings) -> None:
    env = {**os.environ, **kafka_settings.as_env(), "COLUMNS": "80", "LC_LOG_FORMAT": "json"}
    env.pop("LINES", None)
    watch = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.cli", "watch", "--seconds", "40"],
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    # It reads from the latest offset, so snapshots are produced until it stops (it may join late).
    end = int(time.time() * 1000)
    while watch.poll() is None:
        end += 1000
        produce(kafka_settings, "room-counters",
                *(counters(room, end, online=12345, peak_online=20000, gmv_paid_cents_total=123_456_789,
                           orders_accepted_total=7777, comments=321) for room in ROOMS))
        time.sleep(0.5)
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err.decode(errors="replace")[-2000:]
    lines = out.decode("utf-8").splitlines()
    assert lines, f"watch printed nothing; stderr:\n{err.decode(errors='replace')[-2000:]}"
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert not CONTROL.search(out.decode("utf-8").replace("\n", "")), "control codes in piped output"
    assert {line.split(" ")[0] for line in lines} == {f"room={room}" for room in ROOMS}
    assert all("online=12345" in line and "GMV_paid=¥1,234,568" in line for line in lines)
