"""``ClickHouseSink``: writes batches of events into the warehouse, in-process and reusable.

The Kafka consumer loop of ``livecommerce worker sink`` (:mod:`streams.sink.worker`) drives it,
and any other job may embed it instead (``sink.write(events)``) when that job's process is the one
that owns the store.  An embedded chdb directory opens in ONE process only, so in the local stack
exactly one process holds a ``ClickHouseSink`` on the ``chdb://`` DSN; with a server DSN any number
may.

Crash recovery of the rollup: the sink records in ``sink_runs`` that it is running and, on a clean
stop, that it stopped.  A start that finds no clean stop follows a crash, after which the per-minute
rollup can miss a batch (views cut by the kill) or count the replayed batch twice; the sink then
rebuilds the rollup from the deduplicated raw tables once it has caught up with the replay
(:meth:`rebuild_if_pending`, called by the loop when a poll comes back empty).

Personal data: with a :class:`~warehouse.pseudonym.Pseudonymiser` (the worker always passes one,
keyed by ``LC_PSEUDONYM_SECRET``) every ``user_id`` is replaced by its keyed hash before the insert,
so raw viewer ids never reach the analytics tables; the hash is deterministic, so a replayed batch
still collapses onto the rows it repeats.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from base.logs import get_logger
from schemas.base import Event
from schemas.clickhouse import TABLES_BY_NAME, spec_for
from warehouse.migrate import migrate, render
from warehouse.pseudonym import Pseudonymiser
from warehouse.rollups import rebuild_rollups
from warehouse.store import insert_columns

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = get_logger(__name__)

ROWS = Counter("lc_sink_rows", "Rows inserted into ClickHouse by the sink, per table.", ["table"])
BATCHES = Counter("lc_sink_batches", "Batches (flushes) written by the sink.")
SKIPPED = Counter("lc_sink_skipped", "Messages the sink skipped because they do not decode, per topic.", ["topic"])
FLUSH_SECONDS = Histogram(
    "lc_sink_flush_seconds", "Time to insert one batch into every table.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BUFFERED = Gauge("lc_sink_buffered_rows", "Rows buffered in the sink, not yet inserted.")
REBUILDS = Counter("lc_sink_rollup_rebuilds", "Rollup rebuilds after an unclean stop.")


class ClickHouseSink:
    """Inserts events, table by table, into one warehouse database."""

    def __init__(
        self, client: Client, database: str, sink_id: str = "sink-1", pseudonymiser: Pseudonymiser | None = None
    ) -> None:
        self.client = client
        self.database = database
        self.sink_id = sink_id
        self.pseudonymiser = pseudonymiser
        self.rebuild_pending = False

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate the database, note a previous unclean stop, and record this run as running."""
        migrate(self.client, self.database)
        db = render("{db}", self.database)
        runs, last_clean = self.client.query(
            f"SELECT count(), argMax(clean, at) FROM {db}.sink_runs WHERE sink_id = {{sid:String}}",
            parameters={"sid": self.sink_id},
        ).result_rows[0]
        self.rebuild_pending = bool(runs) and not last_clean
        self._mark(clean=False)
        log.info("sink_started", sink=self.sink_id, database=self.database, rebuild_pending=self.rebuild_pending)

    def stop(self) -> None:
        """Record a clean stop (call after the last flush and offset commit)."""
        self._mark(clean=True)
        log.info("sink_stopped_clean", sink=self.sink_id)

    def _mark(self, *, clean: bool) -> None:
        self.client.insert(
            "sink_runs", [[self.sink_id, int(clean), time.time_ns() // 1_000_000]],
            column_names=["sink_id", "clean", "at"], database=self.database,
        )

    def rebuild_if_pending(self) -> bool:
        """Rebuild the rollup once after an unclean stop; call when the replay has been written."""
        if not self.rebuild_pending:
            return False
        started = time.monotonic()
        rebuild_rollups(self.client, self.database)
        self.rebuild_pending = False
        REBUILDS.inc()
        log.info("sink_rollup_rebuilt", sink=self.sink_id, seconds=round(time.monotonic() - started, 3))
        return True

    # ---- writing -----------------------------------------------------------------------------------

    def write_tables(self, tables: Mapping[str, Sequence[Event]]) -> int:
        """Insert each table's events (one insert per table); returns the rows written.

        Raises on the first failed insert: the caller must not commit offsets then (the batch is
        replayed, and tables already written collapse the repeat).
        """
        started = time.monotonic()
        total = 0
        for table, events in tables.items():
            if not events:
                continue
            spec = TABLES_BY_NAME[table]
            if self.pseudonymiser is not None:
                events = self.pseudonymiser.events(events)
            insert_columns(self.client, spec, spec.to_columns(events), database=self.database)
            ROWS.labels(table).inc(len(events))
            total += len(events)
        FLUSH_SECONDS.observe(time.monotonic() - started)
        BATCHES.inc()
        return total

    def write(self, events: Iterable[Event]) -> int:
        """Insert events of any stored types (grouped by table here); for jobs embedding the sink."""
        tables: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            tables[spec_for(type(event)).table].append(event)
        return self.write_tables(tables)
