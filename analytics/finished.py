"""Which rooms' streams have ended and still need their report: pure decisions, no I/O.

Why here and not in the sink: the sink (the embedded store's one owner) only calls a hook when it is
caught up; what counts as "ended" must agree with how the report splits streams
(:func:`analytics.core.split_streams`), so it lives next to it.  A room's stream has ended when a
viewer event arriving now would start a NEW stream: the quiet time from the end of its last active
minute to the current minute exceeds the gap.  The rule is the split rule applied to a future event.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from analytics.core import MINUTE_MS
from schemas.base import is_file_id

#: Rooms whose last activity is older than this are not looked at (a report is for a recent stream).
LOOKBACK_MS = 14 * 86_400_000


def stream_ended(last_minute_ms: int, now_ms: int, gap_ms: int) -> bool:
    """Whether a stream whose last active minute starts at ``last_minute_ms`` is over at ``now_ms``:
    any later event lands in the current minute or after it, more than ``gap_ms`` after the stream's end."""
    now_minute = now_ms - now_ms % MINUTE_MS
    return now_minute - (last_minute_ms + MINUTE_MS) > gap_ms


def ended_rooms(
    last_minute_ms: Mapping[str, int], now_ms: int, gap_ms: int, reported: Mapping[str, int]
) -> list[str]:
    """Rooms (sorted) whose latest stream has ended and is not covered by a report yet.

    ``last_minute_ms``: room -> start of its last active minute (from the store).  ``reported``:
    room -> the last active minute its newest report (written, found on disk, or given up on) covers.
    Rooms whose id is not a safe file name are never returned (their report has nowhere to go).
    """
    return sorted(
        room for room, minute in last_minute_ms.items()
        if stream_ended(minute, now_ms, gap_ms) and reported.get(room, minute - 1) < minute and is_file_id(room)
    )


def check_interval_ms(gap_ms: int) -> int:
    """How often the sink looks for ended streams: a tenth of the gap, between 1 s and 30 s (the
    query is one small GROUP BY; a report is late by at most this)."""
    return max(1_000, min(30_000, gap_ms // 10))


def report_path(reports_dir: Path, room: str, stream_id: str) -> Path:
    """``<reports_dir>/<room>/<stream_id>.html``: the one layout the sink writes and the gateway serves."""
    if not (is_file_id(room) and is_file_id(stream_id)):
        raise ValueError(f"not a safe room or stream id: {room!r}, {stream_id!r}")
    return reports_dir / room / f"{stream_id}.html"
