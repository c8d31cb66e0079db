"""How long the producer waits before sending the next message: the rate control, without a clock.

Two limits, either or both: ``speed`` replays event time at that multiple of real time (1 = real
time, 10 = ten times faster), and ``rate`` caps messages per second.  Zero means no limit, and
with both zero the producer sends as fast as it can.  The caller passes the elapsed wall time in,
so the decision is a plain function that tests can drive with made-up times.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Waits shorter than this are skipped (sleeping costs more than it saves); the pacer catches up later.
MIN_SLEEP_S = 0.002


@dataclass(frozen=True)
class Pacer:
    start_ms: int
    speed: float = 0.0
    rate: float = 0.0

    def __post_init__(self) -> None:
        if self.speed < 0 or self.rate < 0:
            raise ValueError("speed and rate must be >= 0 (0 = unlimited)")

    @property
    def unlimited(self) -> bool:
        return self.speed == 0 and self.rate == 0

    def due_s(self, emit_ms: int, sent: int) -> float:
        """Wall seconds after the start at which the message emitted at ``emit_ms`` (event time),
        preceded by ``sent`` messages, may go out."""
        due = 0.0
        if self.speed > 0:
            due = max(due, (emit_ms - self.start_ms) / 1000 / self.speed)
        if self.rate > 0:
            due = max(due, sent / self.rate)
        return due

    def wait_s(self, emit_ms: int, sent: int, elapsed_s: float) -> float:
        """How long to sleep now (0 when on time or behind, or when the wait is too short to bother)."""
        if self.unlimited:
            return 0.0
        wait = self.due_s(emit_ms, sent) - elapsed_s
        return wait if wait >= MIN_SLEEP_S else 0.0
