"""Likes are summed per room for a short interval and produced as one event. No I/O.

Why: a popular stream gets thousands of taps a second; one Kafka record per tap would cost the
broker and the counters worker far more than the information is worth.  The gateway keeps one
running sum per room and emits ``Like(user_id=None, count=sum)`` once the room's first pending
tap is ``interval_s`` old, splitting sums above the schema's per-event maximum.

Each tap may carry a *ticket* (whoever must hear about it: a socket and its ``ref``, an
idempotency key).  Tickets travel with the batch their likes went into, so the shell acknowledges a
like only when the event holding it has been delivered to Kafka, and reports the failure when it
was not: an ack means the like is on its way, never just that it was counted in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_LIKES_PER_EVENT = 100_000

T = TypeVar("T")


@dataclass
class LikeBatch(Generic[T]):
    """The likes of one room to produce now: ``parts`` (each at most :data:`MAX_LIKES_PER_EVENT`)
    and the tickets of every tap in them."""

    room: str
    parts: list[int]
    tickets: list[T]

    @property
    def count(self) -> int:
        return sum(self.parts)


@dataclass
class _Pending(Generic[T]):
    count: int
    first_seen: float
    tickets: list[T] = field(default_factory=list)


@dataclass
class LikeCoalescer(Generic[T]):
    interval_s: float
    _pending: dict[str, _Pending[T]] = field(default_factory=dict)

    def add(self, room: str, count: int, now: float, ticket: T | None = None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        entry = self._pending.get(room)
        if entry is None:
            entry = self._pending[room] = _Pending(0, now)
        entry.count += count
        if ticket is not None:
            entry.tickets.append(ticket)

    def due(self, now: float, *, force: bool = False) -> list[LikeBatch[T]]:
        """Batches ready to produce, oldest room first; ``force`` drains everything (shutdown)."""
        ready = [room for room, entry in self._pending.items() if force or now - entry.first_seen >= self.interval_s]
        out: list[LikeBatch[T]] = []
        for room in ready:
            entry = self._pending.pop(room)
            total, parts = entry.count, []
            while total > 0:
                part = min(total, MAX_LIKES_PER_EVENT)
                parts.append(part)
                total -= part
            out.append(LikeBatch(room, parts, entry.tickets))
        return out

    @property
    def pending(self) -> int:
        """Likes not yet handed out."""
        return sum(entry.count for entry in self._pending.values())
