"""The sink's decisions, pure: which buffered events to write when, and which offsets that makes safe.

The shell consumes Kafka messages and hands each one here as an event for a table (or as a
skipped offset, for a message that does not decode).  :meth:`SinkBuffer.due` says when to write,
by size and by age; :meth:`SinkBuffer.drain` returns the rows per table together with the next
offset of every (topic, partition) they came from.  The shell commits those offsets only after
every table's insert succeeded, so a crash at any point replays, never loses: at-least-once
delivery into tables that collapse replays (ReplacingMergeTree on natural ids).

Everything is flushed together rather than per table because a Kafka offset covers all tables:
committing partition p up to offset o needs every event below o written, whatever its table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


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
class Batch:
    """What one flush writes (events per table) and then commits (next offset per topic-partition)."""

    tables: dict[str, list[Any]]
    offsets: dict[TopicPartition, int]
    skipped: int

    @property
    def rows(self) -> int:
        return sum(map(len, self.tables.values()))


@dataclass
class SinkBuffer:
    """Events waiting to be written, per table, and the offsets they will make committable."""

    policy: FlushPolicy = field(default_factory=FlushPolicy)
    _tables: dict[str, list[Any]] = field(default_factory=dict)
    _offsets: dict[TopicPartition, int] = field(default_factory=dict)
    _rows: int = 0
    _largest: int = 0
    _skipped: int = 0
    _oldest_ms: int | None = None

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def empty(self) -> bool:
        """Nothing to write and nothing to commit."""
        return not self._offsets

    def _seen(self, topic: str, partition: int, offset: int, now_ms: int) -> None:
        key = (topic, partition)
        if offset + 1 > self._offsets.get(key, -1):
            self._offsets[key] = offset + 1
        if self._oldest_ms is None:
            self._oldest_ms = now_ms

    def add(self, table: str, event: Any, topic: str, partition: int, offset: int, now_ms: int) -> None:
        """Buffer ``event`` for ``table``; it came from ``offset`` of ``topic``/``partition``."""
        rows = self._tables.setdefault(table, [])
        rows.append(event)
        self._rows += 1
        if len(rows) > self._largest:
            self._largest = len(rows)
        self._seen(topic, partition, offset, now_ms)

    def skip(self, topic: str, partition: int, offset: int, now_ms: int) -> None:
        """A message that will not be written (invalid): its offset is still committed with the batch."""
        self._skipped += 1
        self._seen(topic, partition, offset, now_ms)

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

    def drain(self) -> Batch:
        """Take everything buffered; the buffer is empty afterwards."""
        batch = Batch(self._tables, self._offsets, self._skipped)
        self._tables, self._offsets = {}, {}
        self._rows = self._largest = self._skipped = 0
        self._oldest_ms = None
        return batch

    def discard(self) -> int:
        """Drop everything (partitions lost without a chance to commit: their new owner replays them)."""
        return self.drain().rows
