"""Who may cost the gateway how much: limits per user and room, across all of a user's sockets. No I/O.

Why per user and not per socket: a limit per connection is multiplied by the number of connections
one token can open (40 sockets on one token once gave one user 40 times the like budget).  Here
every budget is keyed by the verified token's user (and room for actions), so opening more sockets
buys nothing, and the number of sockets per user is itself capped.

- ``actions``: token bucket per (user, room) for comments, likes, orders, payments, cancels;
- ``control``: token bucket per user for ``subscribe`` (each answered with a full snapshot) and
  ``renew`` (a signature check);
- ``strikes``: token bucket per user for frames that are invalid or refused.  While the user has
  strikes left, a bad frame is answered, dead-lettered and the socket is *throttled* (its next frame
  is read ``penalty_s`` later); once they are spent, the socket that sent it is closed (4009) without
  a dead letter, so a flood of garbage costs the sender its connection, not the cluster its disk;
- ``pings``: token bucket per user for application ``ping`` frames;
- ``sockets``: at most ``max_sockets`` open connections per user on this gateway (4010 beyond).

A frame refused by a rate limit (not invalid, just too many) is answered with ``rate_limited`` and the
socket is throttled by ``penalty_s`` as well, so a flood of valid frames slows its own sender only.

Buckets that have refilled to their burst are forgotten (:meth:`KeyedBuckets.sweep`), so memory
follows the users active in the last few seconds, not every user ever seen.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from ws_gateway.ratelimit import TokenBucket

K = TypeVar("K", bound=Hashable)


class KeyedBuckets(Generic[K]):
    """One :class:`TokenBucket` per key, created full on first use and forgotten once full again."""

    def __init__(self, rate: float, burst: int) -> None:
        TokenBucket(rate, burst)  # validates the pair
        self.rate = rate
        self.burst = burst
        self._buckets: dict[K, TokenBucket] = {}

    def allow(self, key: K, now: float, cost: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.allow(now, cost)

    def sweep(self, now: float) -> int:
        """Forget buckets idle long enough to be full: a new bucket would be identical. Returns how many."""
        refill_s = self.burst / self.rate
        idle = [k for k, b in self._buckets.items() if b.updated is None or now - b.updated >= refill_s]
        for key in idle:
            del self._buckets[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._buckets)


class Strike(Enum):
    THROTTLE = "throttle"  # answer it, dead-letter it, read this socket's next frame a little later
    CLOSE = "close"  # the user is out of strikes: close this socket (4009), no dead letter


@dataclass(frozen=True)
class LimitConfig:
    action_rate: float = 20.0
    action_burst: int = 40
    control_rate: float = 0.5
    control_burst: int = 10
    strike_rate: float = 0.2
    strike_burst: int = 10
    penalty_s: float = 0.1
    ping_rate: float = 5.0
    ping_burst: int = 20
    max_sockets: int = 16


class Limits:
    """Every per-user budget of one gateway process, over the caller's monotonic clock."""

    def __init__(self, config: LimitConfig) -> None:
        if config.max_sockets < 1 or config.penalty_s < 0:
            raise ValueError("max_sockets must be at least 1 and penalty_s not negative")
        self.config = config
        self.actions: KeyedBuckets[tuple[str, str]] = KeyedBuckets(config.action_rate, config.action_burst)
        self.control: KeyedBuckets[str] = KeyedBuckets(config.control_rate, config.control_burst)
        self.strikes: KeyedBuckets[str] = KeyedBuckets(config.strike_rate, config.strike_burst)
        self.pings: KeyedBuckets[str] = KeyedBuckets(config.ping_rate, config.ping_burst)
        self._sockets: dict[str, int] = {}

    def open_socket(self, user: str) -> bool:
        """Count a new connection of ``user``; False (and not counted) when the user is at the cap."""
        count = self._sockets.get(user, 0)
        if count >= self.config.max_sockets:
            return False
        self._sockets[user] = count + 1
        return True

    def close_socket(self, user: str) -> None:
        count = self._sockets.get(user, 0) - 1
        if count > 0:
            self._sockets[user] = count
        else:
            self._sockets.pop(user, None)

    def sockets(self, user: str) -> int:
        return self._sockets.get(user, 0)

    def action(self, user: str, room: str, now: float) -> bool:
        return self.actions.allow((user, room), now)

    def control_frame(self, user: str, now: float) -> bool:
        return self.control.allow(user, now)

    def ping(self, user: str, now: float) -> bool:
        return self.pings.allow(user, now)

    def strike(self, user: str, now: float) -> Strike:
        return Strike.THROTTLE if self.strikes.allow(user, now) else Strike.CLOSE

    def sweep(self, now: float) -> None:
        for buckets in (self.actions, self.control, self.strikes, self.pings):
            buckets.sweep(now)
