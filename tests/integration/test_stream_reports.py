"""On the embedded store, the report of a finished stream while the pipeline runs: the real sink
(``livecommerce worker sink``, the store's one owner) on a real broker and real chdb writes it when the
stream has ended, publishes the room's benchmark, and the real gateway serves it to the room's host and
ops only.  Restarted, the sink finds the report on disk and writes nothing again.

The simulated stream is stamped ten minutes in the past with a 60 s gap: it has ended by the time the
sink stores it, so the test waits for the sink, not for the wall clock.  Waits have generous deadlines
and assert what arrived, never how fast.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from base.settings import REPO_ROOT, Settings
from schemas import RoomBenchmark, decode
from tests.fixtures.kafka import consume_all
from tests.integration.test_sink import SinkProcess
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

pytestmark = pytest.mark.integration

SEED = 4242
ROOM = f"s{SEED}-room0"


def simulate(settings: Settings, start_ms: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "livecommerce.cli", "simulate", "--rooms", "1", "--viewers", "60",
         "--duration", "90", "--speed", "0", "--start-ts", str(start_ms), "--seed", str(SEED), "--json"],
        env={**settings.as_env(), "LC_LOG_FORMAT": "json"}, cwd=REPO_ROOT, check=True, capture_output=True,
        timeout=300,
    )


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def token(settings: Settings, role: str, room: str | None) -> str:
    return mint_token(settings.jwt_secret, sub="u1", role=role, room=room,  # type: ignore[arg-type]
                      now_s=int(time.time()), ttl_s=600)


def wait_for_report(room_dir: Path, sink: SinkProcess, deadline_s: float = 240) -> Path:
    end = time.monotonic() + deadline_s
    while True:
        reports = sorted(room_dir.glob("*.html")) if room_dir.exists() else []
        if reports:
            return reports[0]
        assert sink.proc is not None and sink.proc.poll() is None, f"sink exited:\n{sink.log()[-3000:]}"
        assert time.monotonic() < end, f"no report in {room_dir}:\n{sink.log()[-3000:]}"
        time.sleep(0.5)


def test_the_sink_writes_the_report_of_an_ended_stream_and_the_gateway_serves_it_to_host_and_ops(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.replace(stream_gap_s=60)
    sink = SinkProcess(settings, f"chdb://{tmp_path / 'clickhouse'}", tmp_path / "sink.log")
    start_ms = (int(time.time()) - 600) * 1000
    sink.start()
    try:
        simulate(settings, start_ms)
        report = wait_for_report(settings.reports_dir / ROOM, sink)
        stream_id = report.name.removesuffix(".html")
        assert stream_id.startswith(time.strftime("%Y-%m-%dT%H:", time.gmtime(start_ms / 1000))[:11])
        html = report.read_text(encoding="utf-8")
        assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html")
        assert ROOM in html and html.rstrip().endswith("</html>")  # whole, not half-written
        assert [p.name for p in report.parent.iterdir()] == [report.name]  # no temp file left

        benchmarks = [decode(RoomBenchmark, m.value(), now_ms=2**62)
                      for m in consume_all(settings, "room-benchmarks", expected=1)]
        assert [b.room_id for b in benchmarks] == [ROOM]

        with GatewayProcess(settings) as gw:
            base = f"{gw.url}/reports/{ROOM}/"
            status, body = get(base, token(settings, "host", ROOM))
            assert status == 200 and json.loads(body)["reports"] == [
                {"stream_id": stream_id, "path": f"/reports/{ROOM}/{stream_id}.html"}]
            assert get(f"{base}{stream_id}.html", token(settings, "host", ROOM)) == (200, html)
            with urllib.request.urlopen(f"{base}{stream_id}.html?token={token(settings, 'ops', None)}",
                                        timeout=30) as resp:  # the token in the query, as the dashboard links
                assert resp.status == 200 and resp.read().decode() == html
            assert get(f"{base}{stream_id}.html", token(settings, "viewer", ROOM))[0] == 403
            assert get(f"{base}{stream_id}.html", token(settings, "host", "another-room"))[0] == 403
            assert get(f"{base}{stream_id}.html")[0] == 401
            assert get(f"{gw.url}/reports/{ROOM}/..%2F..%2Fsink.log", token(settings, "ops", None))[0] == 404
            status, script = get(f"{gw.url}/static/reports.js")
            assert status == 200 and "/reports/" in script

        # Restarted, the sink finds the report and writes nothing again.
        assert sink.signal(signal.SIGTERM) == 0
        written = report.stat()
        sink.start()
        sink.wait_for_log("stream_report_exists")
        assert report.stat().st_ino == written.st_ino and report.stat().st_mtime_ns == written.st_mtime_ns
        assert sink.log().count("stream_report_written") == 1
    finally:
        if sink.proc is not None:
            sink.signal(signal.SIGKILL)
