"""Per-room rolling mood and tiered negative-opinion alerts, as plain data structures.

Each room keeps counts of (negative, all) comments in one-second buckets over the last
``window_ms`` of event time (the newest comment's ``ts`` moves the window, so replays and late
events behave the same as live ones).  The negative share of the window drives an alert level:

- ``warning`` when share >= ``warning_share``, ``critical`` when share >= ``critical_share``,
  and only once the window holds at least ``min_comments`` (three angry comments in an empty room
  are not an opinion spike);
- an alert is raised when the level goes *up*; the level comes back down only when the share has
  fallen ``hysteresis`` below that level's threshold, so a share wobbling around a threshold does
  not flood the dashboard.  A fresh rise after recovery alerts again.

The dashboard's mood gauge reads the same numbers: the counters job keeps a tracker of this class
with the same policy over the same scored comments and reports :meth:`MoodTracker.mood` (negative
share and mean score over the same rolling window) in each room snapshot, so "30 % of the last
minute is negative" on an alert is what the gauge showed at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["ok", "warning", "critical"]
_RANK: dict[Level, int] = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class MoodPolicy:
    window_ms: int = 60_000
    min_comments: int = 20
    warning_share: float = 0.30
    critical_share: float = 0.50
    hysteresis: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.warning_share < self.critical_share <= 1:
            raise ValueError("need 0 < warning_share < critical_share <= 1")
        if self.window_ms < 1000 or self.min_comments < 1 or not 0 <= self.hysteresis < self.warning_share:
            raise ValueError("window_ms >= 1000, min_comments >= 1, 0 <= hysteresis < warning_share")


@dataclass(frozen=True)
class MoodAlert:
    """A level rise in one room: what the caller turns into a schemas.Alert."""

    room_id: str
    level: Literal["warning", "critical"]
    negative_share: float
    threshold: float
    comments: int
    ts: int


@dataclass(frozen=True)
class Mood:
    """A room's mood over the rolling window: what the gauge shows and the alert tests."""

    comments: int
    negatives: int
    score_sum: float

    @property
    def negative_share(self) -> float | None:
        return self.negatives / self.comments if self.comments else None

    @property
    def score_avg(self) -> float | None:
        return min(max(self.score_sum / self.comments, -1.0), 1.0) if self.comments else None


def add_to_window(buckets: dict[int, list[float]], newest_ts: int, ts: int, negative: bool, score: float,
                  window_ms: int) -> tuple[int, bool]:
    """Count one scored comment into per-second ``buckets`` ({second: [negatives, comments, score sum]}).

    The newest comment's ``ts`` moves the window: seconds at or before ``(newest - window_ms) // 1000``
    are evicted, and a comment that old is not counted.  Returns the new newest ts and whether the
    comment was counted.  Shared by the alerts (:class:`MoodTracker`) and the gauge (the counters job
    keeps the buckets in its changelogged room state), so both see the same window.
    """
    if ts > newest_ts:
        moved = (ts - window_ms) // 1000 != (newest_ts - window_ms) // 1000
        newest_ts = ts
        if moved:  # evict only when the window's first second moved (not on every comment: hot path)
            oldest_kept = (newest_ts - window_ms) // 1000 + 1
            for second in [s for s in buckets if s < oldest_kept]:
                del buckets[second]
    second = ts // 1000
    if second <= (newest_ts - window_ms) // 1000:
        return newest_ts, False
    bucket = buckets.setdefault(second, [0, 0, 0.0])
    bucket[0] += int(negative)
    bucket[1] += 1
    bucket[2] += score
    return newest_ts, True


def window_mood(buckets: dict[int, list[float]], at_ms: int, window_ms: int) -> Mood:
    """The mood of the window ending at ``at_ms``: seconds after ``(at_ms - window_ms) // 1000`` up to ``at_ms``'s."""
    lo, hi = (at_ms - window_ms) // 1000, at_ms // 1000
    neg: float = 0  # ints, or floats from a restored bucket
    total: float = 0
    score = 0.0
    for second, bucket in buckets.items():  # called for every snapshot: no unpacking, no per-item int()
        if lo < second <= hi:
            neg += bucket[0]
            total += bucket[1]
            score += bucket[2]
    return Mood(int(total), int(neg), score)  # a restored bucket may hold its counts as floats


@dataclass
class RoomMood:
    """One room's window (see :func:`add_to_window`) and its current alert level."""

    buckets: dict[int, list[float]] = field(default_factory=dict)
    newest_ts: int = 0
    level: Level = "ok"
    negatives: int = 0
    comments: int = 0

    @property
    def negative_share(self) -> float:
        return self.negatives / self.comments if self.comments else 0.0


class MoodTracker:
    """Rolling negative share per room, with tiered alerts on rises."""

    def __init__(self, policy: MoodPolicy | None = None) -> None:
        self.policy = policy or MoodPolicy()
        self.rooms: dict[str, RoomMood] = {}

    def observe(self, room_id: str, ts: int, negative: bool, score: float = 0.0) -> MoodAlert | None:
        """Count one scored comment; return an alert if the room's level just rose."""
        room = self.rooms.setdefault(room_id, RoomMood())
        room.newest_ts, counted = add_to_window(room.buckets, room.newest_ts, ts, negative, score,
                                                self.policy.window_ms)
        if not counted:
            return None  # older than the window: too late to matter for the live mood
        now = window_mood(room.buckets, room.newest_ts, self.policy.window_ms)
        room.negatives, room.comments = now.negatives, now.comments
        return self._update_level(room_id, room)

    def share(self, room_id: str) -> float:
        room = self.rooms.get(room_id)
        return room.negative_share if room else 0.0

    def mood(self, room_id: str, at_ms: int | None = None) -> Mood:
        """The room's mood over the window ending at ``at_ms`` (default: its newest comment)."""
        room = self.rooms.get(room_id)
        if room is None:
            return Mood(0, 0, 0.0)
        return window_mood(room.buckets, room.newest_ts if at_ms is None else at_ms, self.policy.window_ms)

    def _target_level(self, room: RoomMood) -> Level:
        p = self.policy
        share = room.negative_share
        if room.comments < p.min_comments:
            up: Level = "ok"
        elif share >= p.critical_share:
            up = "critical"
        elif share >= p.warning_share:
            up = "warning"
        else:
            up = "ok"
        if _RANK[up] >= _RANK[room.level]:
            return up
        # Going down: only past the hysteresis band of the current level's threshold.
        floor = (p.critical_share if room.level == "critical" else p.warning_share) - p.hysteresis
        if room.comments >= p.min_comments and share >= floor:
            return room.level
        return up

    def _update_level(self, room_id: str, room: RoomMood) -> MoodAlert | None:
        new = self._target_level(room)
        rose = _RANK[new] > _RANK[room.level]
        room.level = new
        if not rose or new == "ok":
            return None
        threshold = self.policy.critical_share if new == "critical" else self.policy.warning_share
        return MoodAlert(room_id, new, round(room.negative_share, 4), threshold, room.comments, room.newest_ts)
