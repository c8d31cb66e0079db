"""The ClickHouse writer: batches of events into the raw tables, and the rollup's crash recovery.

Moved here from the sink's shell (issue 10): it is warehouse knowledge (which table an event goes
to, pseudonymised ids, when the rollup must be rebuilt), and any process that owns the store may
embed it, not only the Kafka sink.  An embedded chdb directory opens in ONE process, so in the local
stack exactly one process holds a writer on the ``chdb://`` DSN; with a server DSN any number may.

Crash recovery of the rollup: the writer records in ``sink_runs`` that it is running and, on a clean
stop, that it stopped.  A start that finds no clean stop follows a crash, after which the per-minute
rollup can miss a batch (views cut by the kill) or count the replayed batch twice; the caller then
asks :meth:`WarehouseWriter.rebuild_if_pending` once it has caught up with the replay.

Personal data: with a :class:`~warehouse.pseudonym.Pseudonymiser` every ``user_id`` is replaced by
its keyed hash before the insert; the hash is deterministic, so a replayed batch still collapses onto
the rows it repeats.

Metrics are plain tallies in :attr:`WarehouseWriter.stats` (``rows_<table>``, ``batches``,
``rebuilds``, ``flush_ms`` and ``flush_ms_max``), exported by the process with
:func:`base.metrics.export_stats`.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

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


def rebuild_needed(runs: int, last_clean: int | bool | None) -> bool:
    """Whether a writer starting now follows a crash: it has run before and its last run did not
    record a clean stop."""
    return bool(runs) and not last_clean


def tables_of(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Events grouped by their raw table, in arrival order within each."""
    by_type: dict[type, list[Event]] = defaultdict(list)
    for event in events:  # one dict lookup per event; the table is resolved once per type
        by_type[type(event)].append(event)
    return {spec_for(kind).table: members for kind, members in by_type.items()}  # one table per type


class WarehouseWriter:
    """Inserts events, table by table, into one warehouse database."""

    def __init__(
        self, client: Client, database: str, sink_id: str = "sink-1", pseudonymiser: Pseudonymiser | None = None
    ) -> None:
        self.client = client
        self.database = database
        self.sink_id = sink_id
        self.pseudonymiser = pseudonymiser
        self.rebuild_pending = False
        self.stats: Counter[str] = Counter()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate the database, note a previous unclean stop, and record this run as running."""
        migrate(self.client, self.database)
        db = render("{db}", self.database)
        runs, last_clean = self.client.query(
            f"SELECT count(), argMax(clean, at) FROM {db}.sink_runs WHERE sink_id = {{sid:String}}",
            parameters={"sid": self.sink_id},
        ).result_rows[0]
        self.rebuild_pending = rebuild_needed(int(runs), last_clean)
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
        self.stats["rebuilds"] += 1
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
            self.stats[f"rows_{table}"] += len(events)
            total += len(events)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        self.stats["batches"] += 1
        self.stats["flush_ms"] += elapsed_ms
        self.stats["flush_ms_max"] = max(self.stats["flush_ms_max"], elapsed_ms)
        return total

    def write(self, events: Iterable[Event]) -> int:
        """Insert events of any stored types (grouped by table here); for jobs embedding the writer."""
        return self.write_tables(tables_of(events))
