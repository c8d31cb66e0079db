"""Micro-batching by size and by time, as a pure state machine over explicit clock readings.

Why: the model costs far less per comment in a batch of 64 than one at a time, but a quiet room
must not wait for 64 comments.  A batch is released when it is full or when its oldest item has
waited ``max_wait_ms``.  Time is passed in, never read, so the rule is tested without sleeping.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    """Collects items; :meth:`add` and :meth:`poll` return a batch when one is due, else ``[]``."""

    def __init__(self, max_size: int, max_wait_ms: float) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.max_size = max_size
        self.max_wait_ms = max_wait_ms
        self._items: list[T] = []
        self._first_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, now_ms: float) -> list[T]:
        """Queue ``item``; return the batch if it is now full or the oldest item is overdue."""
        if self._first_at is None:
            self._first_at = now_ms
        self._items.append(item)
        if len(self._items) >= self.max_size:
            return self.flush()
        return self.poll(now_ms)

    def poll(self, now_ms: float) -> list[T]:
        """The pending batch if its oldest item has waited ``max_wait_ms`` or more, else ``[]``."""
        if self._first_at is not None and now_ms - self._first_at >= self.max_wait_ms:
            return self.flush()
        return []

    def due_in_ms(self, now_ms: float) -> float | None:
        """How long until the pending batch is due (None when nothing is pending)."""
        if self._first_at is None:
            return None
        return max(0.0, self._first_at + self.max_wait_ms - now_ms)

    def flush(self) -> list[T]:
        """Release everything pending, in arrival order."""
        items, self._items, self._first_at = self._items, [], None
        return items
