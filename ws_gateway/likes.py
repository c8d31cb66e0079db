"""Likes are summed per room for a short interval and produced as one event. No I/O.

Why: a popular stream gets thousands of taps a second; one Kafka record per tap would cost the
broker and the counters worker far more than the information is worth.  The gateway keeps one
running sum per room and emits ``Like(user_id=None, count=sum)`` once the room's first pending
tap is ``interval_s`` old, splitting sums above the schema's per-event maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LIKES_PER_EVENT = 100_000


@dataclass
class LikeCoalescer:
    interval_s: float
    _pending: dict[str, list[float]] = field(default_factory=dict)  # room -> [count, first_seen]

    def add(self, room: str, count: int, now: float) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        entry = self._pending.get(room)
        if entry is None:
            self._pending[room] = [float(count), now]
        else:
            entry[0] += count

    def due(self, now: float, *, force: bool = False) -> list[tuple[str, int]]:
        """(room, count) pairs ready to produce, oldest room first; ``force`` drains everything (shutdown)."""
        ready = [room for room, (_, first) in self._pending.items() if force or now - first >= self.interval_s]
        out: list[tuple[str, int]] = []
        for room in ready:
            total = int(self._pending.pop(room)[0])
            while total > 0:
                part = min(total, MAX_LIKES_PER_EVENT)
                out.append((room, part))
                total -= part
        return out

    @property
    def pending(self) -> int:
        """Likes not yet handed out."""
        return int(sum(count for count, _ in self._pending.values()))
