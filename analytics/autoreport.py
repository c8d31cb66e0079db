"""The store's owner writes the report of every stream that has ended (the shell around
:mod:`analytics.finished`).

Why in the sink's process: the embedded store (chdb) opens in ONE process, the sink worker, so a
report of a finished stream can be built while the pipeline runs only there.  The sink calls this
hook when it is caught up (every assigned partition read to its end and everything read written),
so the ended stream is complete in the store.  The hook looks for ended streams at most every
:func:`~analytics.finished.check_interval_ms`; for each it publishes the room's benchmark to
``room-benchmarks`` and then writes ``<data_dir>/reports/<room>/<stream_id>.html`` atomically (temp
file + rename).  The file is the record of "done": a restart finds it and builds nothing again, and
a crash before the rename leaves only a hidden temp file, removed at the next write.

The trade-off: the build runs on the sink's loop, so the sink reads nothing while it runs (about
1-3 s for a demo-sized stream, see docs/report.md); it only runs when the sink has nothing to
read, and Kafka keeps what arrives meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from analytics import finished
from base.clock import now_ms
from base.logs import get_logger
from base.settings import Settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from schemas.events import RoomBenchmark

log = get_logger(__name__)


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` so that it is either absent or complete: a hidden temp file in the same
    directory, flushed to disk, then renamed over ``path`` (rename is atomic within a filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_stale_temps(directory: Path) -> None:
    """Temp files left by a crash mid-write (never served: hidden, not ``*.html``)."""
    for stale in directory.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


class StreamReports:
    """The sink's caught-up hook: finds ended streams, publishes benchmarks, writes reports."""

    def __init__(self, settings: Settings, client_of: Callable[[], tuple[Client, str]],
                 publish: Callable[[RoomBenchmark], None], clock: Callable[[], int] = now_ms) -> None:
        self.gap_ms = settings.stream_gap_ms
        self.reports_dir = settings.reports_dir
        self.client_of = client_of
        self.publish = publish
        self.clock = clock
        self.reported: dict[str, int] = {}
        self.next_check_ms = 0
        self.stats = {"written": 0, "found": 0, "failed": 0, "build_ms_max": 0}

    def __call__(self) -> None:
        now = self.clock()
        if now < self.next_check_ms:
            return
        self.next_check_ms = now + finished.check_interval_ms(self.gap_ms)
        self.run_once(now)

    def run_once(self, now: int) -> list[Path]:
        """Write the report of every ended stream without one; the paths written."""
        from warehouse.reports import ReportQueries

        client, database = self.client_of()
        last = ReportQueries(client, database).last_active(now - finished.LOOKBACK_MS)
        written = []
        for room in finished.ended_rooms(last, now, self.gap_ms, self.reported):
            try:
                path = self.write(client, database, room, now)
            except Exception:  # one room's failure must not stop the sink; retried after a restart
                self.stats["failed"] += 1
                log.exception("stream_report_failed", room=room)
                path = None
            self.reported[room] = last[room]
            if path is not None:
                written.append(path)
        return written

    def write(self, client: Client, database: str, room: str, now: int) -> Path | None:
        """The room's latest stream's report (None when it is already on disk)."""
        from analytics.benchmark import room_benchmark
        from analytics.build import Options, build_report, list_streams
        from analytics.html import render_html

        spans = list_streams(client, database, room, self.gap_ms)
        if not spans:
            return None
        span = spans[-1]
        path = finished.report_path(self.reports_dir, room, span.stream_id)
        if path.exists():
            self.stats["found"] += 1
            log.info("stream_report_exists", room=room, stream=span.stream_id, path=str(path))
            return None
        started = time.monotonic()
        # Benchmark first: the report file is the record that the stream is done, so a crash between
        # the two publishes the benchmark again (the topic is compacted: the latest per room wins).
        self.publish(room_benchmark(client, database, room, now_ms=now, gap_ms=self.gap_ms))
        html = render_html(build_report(client, database, room, stream_id=span.stream_id,
                                        options=Options(gap_ms=self.gap_ms)))
        if path.parent.exists():
            remove_stale_temps(path.parent)
        write_atomically(path, html)
        took = int((time.monotonic() - started) * 1000)
        self.stats["written"] += 1
        self.stats["build_ms_max"] = max(self.stats["build_ms_max"], took)
        log.info("stream_report_written", room=room, stream=span.stream_id, path=str(path), ms=took,
                 bytes=path.stat().st_size)
        return path


def stream_reports(settings: Settings) -> StreamReports | None:
    """The hook for the sink worker of ``settings`` (None when ``LC_STREAM_GAP_S`` is 0)."""
    if settings.stream_gap_s <= 0:
        return None
    from confluent_kafka import Producer

    from base.kafka import make_producer
    from schemas import TOPICS, encode
    from warehouse.client import database_of, get_client

    dsn = settings.effective_clickhouse_dsn
    spec = TOPICS["room-benchmarks"]
    producers: list[Producer] = []

    def publish(bench: RoomBenchmark) -> None:
        if not producers:
            producers.append(make_producer(settings))
        producer = producers[0]
        producer.produce(settings.topic(spec.name), encode(bench), spec.key_of(bench))
        if producer.flush(30):
            raise RuntimeError(f"benchmark of {bench.room_id} not confirmed by Kafka")

    return StreamReports(settings, lambda: (get_client(dsn), database_of(dsn)), publish)
