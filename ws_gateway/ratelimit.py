"""Per-connection action rate limit: a token bucket over a caller-supplied clock. No I/O.

Why a bucket: a viewer may burst a few likes or a quick order + pay, but one connection cannot push
more than ``rate`` actions a second into Kafka for long.  Refused actions get an error frame; the
connection stays open.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.tokens = float(self.burst)

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens at time ``now`` (seconds, monotonic) if available."""
        if self.updated is not None and now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
