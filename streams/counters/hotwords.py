"""Live hot words of each room: the most frequent chat words of the last minute of event time.

Pure: comments in (text and event time), top words out; the words are those of
:mod:`schemas.words` (jieba for Chinese, simple tokens for the rest, a stop list), the same as the
report's.  Why buckets: a sliding 60 s window over thousands of comments a second is kept as 12
buckets of 5 s plus a running total, so adding a comment and moving the window cost only the words
involved, never a recount.  A comment older than the window (late beyond it) is not counted.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.words import tokenize_cached


@dataclass
class RoomWords:
    """The buckets of one room: (bucket start, counts), oldest first, and their running total."""

    buckets: deque[tuple[int, Counter[str]]] = field(default_factory=deque)
    total: Counter[str] = field(default_factory=Counter)
    newest: int = -(2**62)


class HotWords:
    """Sliding-window word counts per room.

    ``window_ms`` must be a multiple of ``bucket_ms``; the window ending at the newest comment's
    bucket covers ``[newest_bucket_end - window_ms, newest_bucket_end)``.
    """

    def __init__(self, window_ms: int = 60_000, bucket_ms: int = 5_000,
                 tokenize: Callable[[str], Iterable[str]] = tokenize_cached) -> None:
        if bucket_ms <= 0 or window_ms <= 0 or window_ms % bucket_ms:
            raise ValueError("window_ms must be a positive multiple of bucket_ms")
        self.window_ms = window_ms
        self.bucket_ms = bucket_ms
        self.tokenize = tokenize
        self.rooms: dict[str, RoomWords] = {}

    def _start(self, room: RoomWords) -> int:
        """First event time inside the room's window."""
        return room.newest - room.newest % self.bucket_ms + self.bucket_ms - self.window_ms

    def add(self, room_id: str, text: str, ts: int) -> bool:
        """Count the words of one comment; False (nothing counted) when it is older than the window."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = RoomWords()
        if ts > room.newest:
            room.newest = ts
            self._expire(room)
        if ts < self._start(room):
            return False
        words = Counter(self.tokenize(text))
        if not words:
            return True
        start = ts - ts % self.bucket_ms
        buckets = room.buckets
        for bucket_start, counts in reversed(buckets):  # usually the last one
            if bucket_start == start:
                counts.update(words)
                break
            if bucket_start < start:
                self._insert(buckets, start, words)
                break
        else:
            buckets.appendleft((start, words))
        room.total.update(words)
        return True

    @staticmethod
    def _insert(buckets: deque[tuple[int, Counter[str]]], start: int, words: Counter[str]) -> None:
        items = list(buckets)
        i = len(items)
        while i > 0 and items[i - 1][0] > start:
            i -= 1
        buckets.insert(i, (start, words))

    def _expire(self, room: RoomWords) -> None:
        start = self._start(room)
        while room.buckets and room.buckets[0][0] < start:
            _, counts = room.buckets.popleft()
            room.total.subtract(counts)
            for word in counts:
                if room.total[word] <= 0:
                    del room.total[word]

    def advance(self, room_id: str, now_ts: int) -> None:
        """Move a quiet room's window to ``now_ts`` (event time), so its old words fade."""
        room = self.rooms.get(room_id)
        if room is not None and now_ts > room.newest:
            room.newest = now_ts
            self._expire(room)

    def top(self, room_id: str, n: int = 20) -> list[tuple[str, int]]:
        """The ``n`` most frequent words of the window, most frequent first, ties by word."""
        room = self.rooms.get(room_id)
        if room is None:
            return []
        return sorted(room.total.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
