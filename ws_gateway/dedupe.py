"""Client idempotency keys of comments and likes: each key produces at most once per window. No I/O.

Why here and not only downstream: a like is coalesced with other viewers' likes before it reaches
Kafka, so once produced it cannot be told apart; and an answer to a retry should not wait for a
stream job.  The gateway remembers, per key, whether the action is *pending* (produced, delivery
report not back yet: retries join it and are answered with it) or *done* (retries are answered with
the stored answer at once), for ``window_s`` seconds after it was first seen.

Keys are ``(user, room, kind, client id)``: they hold across the user's reconnects and sockets on
this gateway process, and never match another user's key.  A failed delivery forgets the key, so
the client's retry (it was told about the failure) is produced afresh.

Bounded: at most ``capacity`` keys; beyond that the oldest is forgotten early.  The window is
therefore ``window_s`` or, under a flood of more than ``capacity`` keys per window, shorter; both
are documented in docs/gateway.md.  A retry sent to another gateway process is not deduplicated
here; for comments the event id is still the same (see :func:`ws_gateway.actions.scoped_id`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
W = TypeVar("W")
A = TypeVar("A")


class Seen(Enum):
    NEW = "new"  # first time in the window: the caller produces it, then calls settle() or abandon()
    PENDING = "pending"  # in flight: the waiter was added and will be answered by settle() / abandon()
    DONE = "done"  # already delivered: answer the waiter with Claim.answer now


@dataclass
class _Entry(Generic[W, A]):
    first_seen: float
    waiters: list[W] = field(default_factory=list)
    answer: A | None = None
    done: bool = False


@dataclass(frozen=True)
class Claim(Generic[A]):
    seen: Seen
    answer: A | None = None


class Idempotency(Generic[K, W, A]):
    """Pending and done keys of the last ``window_s`` seconds (caller's monotonic clock), at most ``capacity``."""

    def __init__(self, window_s: float = 300.0, capacity: int = 200_000) -> None:
        if window_s <= 0 or capacity < 1:
            raise ValueError("window_s must be positive and capacity at least 1")
        self.window_s = window_s
        self.capacity = capacity
        self._entries: OrderedDict[K, _Entry[W, A]] = OrderedDict()  # oldest first_seen first

    def claim(self, key: K, waiter: W, now: float) -> Claim[A]:
        """Register ``waiter`` for ``key``; what the caller must do depends on :class:`Seen`."""
        self.expire(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(first_seen=now, waiters=[waiter])
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return Claim(Seen.NEW)
        if entry.done:
            return Claim(Seen.DONE, entry.answer)
        entry.waiters.append(waiter)
        return Claim(Seen.PENDING)

    def settle(self, key: K, answer: A) -> list[W]:
        """The action of ``key`` was delivered: remember ``answer``; returns the waiters to answer."""
        entry = self._entries.get(key)
        if entry is None:  # forgotten meanwhile (capacity): nobody else can be waiting
            return []
        waiters, entry.waiters = entry.waiters, []
        entry.answer, entry.done = answer, True
        return waiters

    def abandon(self, key: K) -> list[W]:
        """The action of ``key`` failed: forget the key (a retry produces again); returns the waiters to tell."""
        entry = self._entries.pop(key, None)
        return [] if entry is None else entry.waiters

    def expire(self, now: float) -> None:
        """Forget keys first seen more than ``window_s`` ago (done ones and, defensively, stuck pending ones)."""
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.first_seen < self.window_s:
                break
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
