"""Which streams have ended and need their report (analytics.finished), and the atomic write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.autoreport import remove_stale_temps, write_atomically
from analytics.core import MINUTE_MS, split_streams
from analytics.finished import check_interval_ms, ended_rooms, report_path, stream_ended
from schemas.base import is_file_id

T0 = 1_767_225_600_000  # a minute boundary
minutes = st.lists(st.integers(0, 120).map(lambda i: T0 + i * MINUTE_MS), min_size=1, max_size=30)
gaps = st.integers(0, 40 * MINUTE_MS)


@given(minutes, gaps, st.integers(0, 200 * MINUTE_MS))
def test_ended_means_an_event_now_or_later_starts_a_new_stream(active: list[int], gap: int, after: int) -> None:
    """The rule agrees with the report's own split: any event from the current minute on would open a
    new stream exactly when the stream is said to have ended."""
    last = max(active)
    now = last + after
    before = split_streams("r", [(m, 1) for m in active], gap)
    later = now - now % MINUTE_MS  # the earliest minute an event arriving now can fall in
    with_event = split_streams("r", [(m, 1) for m in active] + [(later, 1)], gap)
    assert stream_ended(last, now, gap) == (len(with_event) == len(before) + 1)
    if stream_ended(last, now, gap):  # and a still later event is then a new stream too
        assert len(split_streams("r", [(m, 1) for m in active] + [(later + 7 * MINUTE_MS, 1)], gap)) == len(before) + 1


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "..", "x/y"]),
                       st.integers(0, 60).map(lambda i: T0 + i * MINUTE_MS)),
       st.integers(0, 120 * MINUTE_MS), gaps)
def test_each_ended_stream_is_reported_once(last: dict[str, int], after: int, gap: int) -> None:
    now = T0 + after
    due = ended_rooms(last, now, gap, {})
    assert due == sorted(due)
    assert set(due) == {r for r, m in last.items() if is_file_id(r) and stream_ended(m, now, gap)}
    reported = {room: last[room] for room in due}
    assert ended_rooms(last, now, gap, reported) == []  # covered: not again
    assert ended_rooms(last, now + 10 * MINUTE_MS, gap, reported) == [  # later: only the newly ended ones
        r for r in ended_rooms(last, now + 10 * MINUTE_MS, gap, {}) if r not in reported]


def test_a_new_stream_of_a_reported_room_is_reported_again() -> None:
    gap = 30 * MINUTE_MS
    first = {"a": T0}
    now = T0 + 40 * MINUTE_MS
    assert ended_rooms(first, now, gap, {}) == ["a"]
    second = {"a": T0 + 100 * MINUTE_MS}
    assert ended_rooms(second, T0 + 101 * MINUTE_MS, gap, {"a": T0}) == []  # still live
    assert ended_rooms(second, T0 + 140 * MINUTE_MS, gap, {"a": T0}) == ["a"]


def test_a_quiet_room_is_not_ended_before_the_gap() -> None:
    gap = 30 * MINUTE_MS
    assert not stream_ended(T0, T0 + 31 * MINUTE_MS, gap)  # 30 min after the end of the last minute
    assert stream_ended(T0, T0 + 32 * MINUTE_MS, gap)


@given(gaps)
def test_the_check_interval_is_between_one_and_thirty_seconds(gap: int) -> None:
    assert 1_000 <= check_interval_ms(gap) <= 30_000


@pytest.mark.parametrize("room,stream", [("..", "s"), ("r", ".."), ("r/..", "s"), (".hidden", "s"), ("r", "a/b"),
                                         ("", "s"), ("r", "x" * 65)])
def test_a_report_path_never_leaves_its_directory(room: str, stream: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        report_path(tmp_path, room, stream)


def test_a_report_path_is_room_then_stream(tmp_path: Path) -> None:
    assert report_path(tmp_path, "room-1", "2026-01-01T00:00Z") == tmp_path / "room-1" / "2026-01-01T00:00Z.html"


def test_an_atomic_write_leaves_the_file_whole_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "r" / "s.html"
    write_atomically(path, "<html>one</html>")
    write_atomically(path, "<html>two</html>")
    assert path.read_text() == "<html>two</html>"
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.html"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "r" / "s.html"
    write_atomically(path, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "half \udc80 written")  # fails mid-write (a lone surrogate cannot be encoded)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.html"]


def test_temps_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    (tmp_path / f".s.html.{os.getpid() + 1}.tmp").write_text("half")
    (tmp_path / "s.html").write_text("whole")
    remove_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.html"]
