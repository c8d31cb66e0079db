"""What to do with a room update for one client, given how much it has not yet read. No I/O.

Why not simply ``await websocket.send``: one stalled client would then stall the room's fan-out,
and a queue per client would grow a backlog of stale frames.  Instead the shell writes updates
without waiting and asks :class:`BufferPolicy` first, per client and per update:

- below ``high_water`` unsent bytes: send the update;
- above it: skip updates and mark the client *behind*;
- back below it while behind: send a fresh snapshot (the latest state, not the missed frames);
- above ``limit`` bytes, or behind for longer than ``max_behind_s``: drop the client (close 4008).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    SEND = "send"
    SKIP = "skip"
    SNAPSHOT = "snapshot"
    DROP = "drop"


@dataclass
class ClientLag:
    """Per-client lag bookkeeping: since when (monotonic seconds) the client is behind, or None."""

    behind_since: float | None = None


@dataclass(frozen=True)
class BufferPolicy:
    high_water: int = 64 * 1024
    limit: int = 1024 * 1024
    max_behind_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.high_water <= self.limit:
            raise ValueError("need 0 < high_water <= limit")
        if self.max_behind_s <= 0:
            raise ValueError("max_behind_s must be positive")

    def decide(self, lag: ClientLag, buffered: int, now: float) -> Verdict:
        """The verdict for one update; updates ``lag`` to match."""
        if buffered > self.limit:
            return Verdict.DROP
        if buffered > self.high_water:
            if lag.behind_since is None:
                lag.behind_since = now
            elif now - lag.behind_since > self.max_behind_s:
                return Verdict.DROP
            return Verdict.SKIP
        if lag.behind_since is not None:
            lag.behind_since = None
            return Verdict.SNAPSHOT
        return Verdict.SEND
