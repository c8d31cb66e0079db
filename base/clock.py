"""The one wall clock of the project, in Unix milliseconds.

Why one function: event timestamps, gateway stamps, expiry timers and dead-letter stamps must read
the same clock (``time.time_ns``), so tests can reason about them and nothing mixes monotonic and
wall time by accident.  Durations (timeouts, intervals) use ``time.monotonic`` directly.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC), from the system's real-time clock."""
    return time.time_ns() // 1_000_000
