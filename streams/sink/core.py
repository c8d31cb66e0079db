"""The sink's decisions, pure: which buffered events to write, and when.

The runtime hands admitted events here, each for its table.  :meth:`SinkBuffer.due` says when to
write, by size and by age; :meth:`SinkBuffer.drain` returns the rows per table.  The runtime
commits its input offsets only after every table's insert succeeded, so a crash at any point
replays, never loses: at-least-once delivery into tables that collapse replays (ReplacingMergeTree
on natural ids).

Everything is flushed together rather than per table because a Kafka offset covers all tables:
committing partition p up to offset o needs every event below o written, whatever its table.

What is stored: the warehouse holds what the jobs DECIDED, not what clients sent.
:func:`stored_rows` maps one admitted event to the rows it contributes:

* ``orders`` rows come from the flash-sale job's first answer to an attempt (``accepted`` or
  ``rejected`` order results), never from the raw ``orders`` topic: the row carries the quantity
  and time of the attempt that was decided, a re-send with another payload changes nothing (its
  answer repeats the first one), and a misrouted attempt, which gets no answer, is never stored;
* ``sale_config`` rows come from the configs the flash-sale job applied (topic
  ``sale-config-applied``), so a restock of a never-opened SKU or a misrouted config is absent;
* the other topics are stored when the runtime's gate admits them, the same gate their owning job
  runs (valid, keyed by their key field, on the partition that key hashes to), so admitted ==
  decided for those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.events import OrderAttempt, OrderResult

#: Statuses of an order result that decide an attempt (the others answer payments or expiries).
ATTEMPT_DECISIONS = frozenset({"accepted", "rejected"})

#: Tables never written from their own topic: their rows are derived from a decision instead.
DERIVED_TABLES = frozenset({"orders"})


def order_of_result(result: OrderResult) -> OrderAttempt | None:
    """The attempt a result decided, as the flash-sale job recorded it (its quantity, its time), or
    None when the result does not decide an attempt (a payment's answer, an expiry)."""
    if result.status not in ATTEMPT_DECISIONS:
        return None
    return OrderAttempt(
        v=result.v, order_id=result.order_id, room_id=result.room_id, sku_id=result.sku_id,
        user_id=result.user_id, quantity=result.quantity, ts=result.attempt_ts,
    )


def stored_rows(table: str, event: Any) -> list[tuple[str, Any]]:
    """The (table, row) pairs one admitted event of ``table``'s topic contributes; empty for a raw
    order attempt (see the module docstring)."""
    if table in DERIVED_TABLES:
        return []
    if type(event) is OrderResult:
        order = order_of_result(event)
        if order is not None:
            return [(table, event), ("orders", order)]
    return [(table, event)]


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
        """Buffer the rows ``event`` contributes (:func:`stored_rows`: usually itself, for ``table``)."""
        if table in DERIVED_TABLES or type(event) is OrderResult:
            for name, row in stored_rows(table, event):
                self._append(name, row)
        else:  # the hot path (comments, likes, ...): the row is the event
            self._append(table, event)
        if self._oldest_ms is None:
            self._oldest_ms = now_ms

    def _append(self, table: str, row: Any) -> None:
        rows = self._tables.setdefault(table, [])
        rows.append(row)
        self._rows += 1
        if len(rows) > self._largest:
            self._largest = len(rows)

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
