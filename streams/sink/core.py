"""The sink's decisions, pure: which buffered events to write, and when.

The runtime hands admitted events here, each for its table.  :meth:`SinkBuffer.due` says when to
write, by size and by age; :meth:`SinkBuffer.drain` returns the rows per table.  The runtime
commits its input offsets only after every table's insert succeeded, so a crash at any point
replays, never loses: at-least-once delivery into tables that collapse replays (ReplacingMergeTree
on natural ids).

Everything is flushed together rather than per table because a Kafka offset covers all tables:
committing partition p up to offset o needs every event below o written, whatever its table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FlushPolicy:
    """When to write: at ``max_rows`` buffered events in all, ``max_table_rows`` in one table, or when
    the oldest buffered message (event or skip) is ``max_age_ms`` old.

    Large batches because each insert into the embedded engine costs ~15-60 ms whatever its size
    (a part written, views run), while rows cost ~4 µs each: 20,000-row batches keep the fixed cost
    under a fifth of the total.
    """

    max_rows: int = 50_000
    max_table_rows: int = 20_000
    max_age_ms: int = 1_000

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_table_rows < 1 or self.max_age_ms < 0:
            raise ValueError(f"invalid flush policy {self}")


@dataclass
class SinkBuffer:
    """Events waiting to be written, per table."""

    policy: FlushPolicy = field(default_factory=FlushPolicy)
    _tables: dict[str, list[Any]] = field(default_factory=dict)
    _rows: int = 0
    _largest: int = 0
    _oldest_ms: int | None = None

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def empty(self) -> bool:
        return self._rows == 0

    def add(self, table: str, event: Any, now_ms: int) -> None:
        """Buffer ``event`` for ``table``."""
        rows = self._tables.setdefault(table, [])
        rows.append(event)
        self._rows += 1
        if len(rows) > self._largest:
            self._largest = len(rows)
        if self._oldest_ms is None:
            self._oldest_ms = now_ms

    def due(self, now_ms: int) -> bool:
        """Whether to flush now."""
        if self._oldest_ms is None:
            return False
        return (
            self._rows >= self.policy.max_rows
            or self._largest >= self.policy.max_table_rows
            or now_ms - self._oldest_ms >= self.policy.max_age_ms
        )

    def ms_until_due(self, now_ms: int) -> int | None:
        """How long the shell may block waiting for messages before the age limit is reached."""
        if self._oldest_ms is None:
            return None
        return max(0, self._oldest_ms + self.policy.max_age_ms - now_ms)

    def drain(self) -> dict[str, list[Any]]:
        """Take everything buffered, per table; the buffer is empty afterwards."""
        tables = self._tables
        self._tables = {}
        self._rows = self._largest = 0
        self._oldest_ms = None
        return tables

    def discard(self) -> int:
        """Drop everything (partitions lost without a chance to commit: their new owner replays them)."""
        return sum(map(len, self.drain().values()))
