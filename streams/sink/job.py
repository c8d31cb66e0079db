"""The ClickHouse sink on the stream runtime, at least once: Kafka topics into warehouse tables.

The runner gates every message exactly as the jobs that own the topics do (validation, key and
partition), so the warehouse never stores a message its owning job refused.  Admitted events are
buffered per table (:class:`~streams.sink.core.SinkBuffer`); at each checkpoint the buffer is
inserted and only then are the offsets committed (Quix Streams' Checkpoint order).  A crash
anywhere replays the uncommitted tail and the ReplacingMergeTree tables collapse the repeats:
exactly the produced rows under FINAL / distinct-id queries, even across ``kill -9``.

Reads ``read_committed``: the counters and flash-sale jobs write their outputs in transactions,
and an aborted transaction's records must not reach the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS
from schemas.base import Event
from schemas.clickhouse import spec_for
from streams.runtime.job import Job, Output, Record
from streams.runtime.runner import RunnerConfig
from streams.sink.core import FlushPolicy, SinkBuffer
from warehouse.writer import WarehouseWriter

log = get_logger(__name__)

#: Logical topics stored by the sink (every topic that has a raw table).
#: Orders are stored from their decisions (order-results) and sale configs from the configs the flash
#: sale applied (sale-config-applied), never from what clients sent (streams/sink/core.py).
STORED_TOPICS = (
    "comments", "scored-comments", "likes", "presence", "sale-config-applied", "payments",
    "order-results", "stock", "room-counters", "alerts", "dead-letters",
    "impressions", "product-clicks", "follows", "shares", "host-actions", "room-benchmarks",
)


class BufferedSink:
    """The runner's Sink: a :class:`SinkBuffer` in front of a :class:`~warehouse.writer.WarehouseWriter`."""

    def __init__(self, sink: WarehouseWriter, policy: FlushPolicy | None = None,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        self.sink = sink
        #: Called whenever everything read is written and nothing waits to be read (the store's owner
        #: writes the reports of ended streams then); its time is time the sink does not read.
        self.on_caught_up = on_caught_up
        self.buffer = SinkBuffer(policy or FlushPolicy())
        self.rows = 0
        self.batches = 0

    def add(self, events: list[Event], wall_ms: int) -> None:
        buffer = self.buffer
        for event in events:
            buffer.add(spec_for(type(event)).table, event, wall_ms)
        self.sink.stats["buffered_rows_max"] = max(self.sink.stats["buffered_rows_max"], buffer.rows)

    def due(self, wall_ms: int) -> bool:
        return self.buffer.due(wall_ms)

    def flush(self) -> None:
        """Insert everything buffered (raises on a failed insert: the offsets are then not committed)."""
        tables = self.buffer.drain()
        started = time.monotonic()
        rows = self.sink.write_tables(tables)
        self.rows += rows
        self.batches += 1
        log.info("sink_flushed", rows=rows, tables=len(tables), seconds=round(time.monotonic() - started, 3))

    def discard(self) -> None:
        dropped = self.buffer.discard()
        log.warning("sink_buffer_discarded", dropped_rows=dropped)

    def caught_up(self) -> None:
        self.sink.rebuild_if_pending()  # any replay after a crash is written by now
        if self.on_caught_up is not None:
            self.on_caught_up()


class SinkTask:
    """A partition's share of the sink: hands admitted events to the one shared buffer."""

    def __init__(self, into: BufferedSink) -> None:
        self.into = into

    def process(self, events: list[Event], wall_ms: int) -> None:
        self.into.add(events, wall_ms)

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        return None

    def take_outputs(self) -> list[Output]:
        return []

    def take_changes(self) -> list[Record]:
        return []

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        return []


def sink_job(into: BufferedSink, topics: tuple[str, ...] = STORED_TOPICS) -> Job:
    unknown = set(topics) - set(TOPICS)
    if unknown:
        raise ValueError(f"no such topics: {sorted(unknown)}")
    return Job(name="sink", inputs=topics, owned=frozenset(),
               new_task=lambda partition, records: SinkTask(into))


RUNNER_CONFIG = RunnerConfig(mode="at_least_once", batch_size=5000, poll_timeout_s=0.2)


def open_sink(settings: Settings, worker_id: str, on_caught_up: Callable[[], None] | None = None) -> BufferedSink:
    """The ClickHouse sink of ``settings`` (embedded chdb or a server), migrated and marked running."""
    from warehouse.client import database_of, get_client, preload_chdb
    from warehouse.pseudonym import Pseudonymiser

    dsn = settings.effective_clickhouse_dsn
    if dsn.startswith("chdb:"):
        preload_chdb()  # before any thread starts: importing chdb moves the working directory
    sink = WarehouseWriter(get_client(dsn), database_of(dsn), sink_id=f"sink-{worker_id}",
                           pseudonymiser=Pseudonymiser(settings.pseudonym_secret))
    sink.start()
    policy = FlushPolicy(max_rows=settings.sink_max_rows,
                         max_table_rows=min(FlushPolicy.max_table_rows, settings.sink_max_rows),
                         max_age_ms=settings.sink_max_age_ms)
    return BufferedSink(sink, policy, on_caught_up)


def run_worker(settings: Settings, worker_id: str, web_port: int,
               on_caught_up: Callable[[], None] | None = None) -> int:
    """``livecommerce worker sink``: run until SIGTERM/SIGINT; Prometheus /metrics on ``web_port``.

    ``on_caught_up`` is work for the store's owner (the CLI passes the report writer of
    :mod:`analytics.autoreport`: this layer may not import analytics)."""
    from base.metrics import export_stats
    from streams.runtime.run import run_job
    from streams.runtime.runner import Runner

    into = open_sink(settings, worker_id, on_caught_up)
    export_stats("lc_sink", into.sink.stats, "ClickHouse writer statistics (rows per table, batches, flush ms)")
    try:
        return run_job(settings, Runner(settings, sink_job(into), worker_id, RUNNER_CONFIG, sink=into), web_port)
    finally:
        into.sink.stop()  # a clean stop: no rollup rebuild at the next start
