"""Tumbling-window assignment and the per-partition watermark (streams.counters.windows)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.counters.windows import NO_TIME, Watermark, window_start

T0 = 1_700_000_000_000


@given(ts=st.integers(min_value=0, max_value=2**50), size=st.integers(min_value=1, max_value=10**6))
def test_every_timestamp_falls_in_exactly_one_aligned_window(ts: int, size: int) -> None:
    start = window_start(ts, size)
    assert start % size == 0
    assert start <= ts < start + size


def test_a_timestamp_on_a_boundary_opens_the_next_window() -> None:
    assert window_start(T0 + 999, 1000) == T0
    assert window_start(T0 + 1000, 1000) == T0 + 1000


@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=10_000), st.integers(0, 3_000)),
        max_size=60,
    )
)
def test_watermark_never_goes_back_and_trails_the_newest_event_by_the_lateness(
    steps: list[tuple[bool, int, int]],
) -> None:
    wm = Watermark(allowed_lateness_ms=200, idle_ms=500)
    wall, previous, newest = 0, NO_TIME, NO_TIME
    for is_event, offset, wall_step in steps:
        wall += wall_step
        if is_event:
            wm.observe(T0 + offset, wall)
            newest = max(newest, T0 + offset)
        else:
            wm.tick(wall)
        assert wm.value >= previous
        if newest != NO_TIME:
            assert wm.value >= newest - 200
        previous = wm.value


def test_watermark_is_untouched_by_ticks_until_the_partition_is_idle() -> None:
    wm = Watermark(allowed_lateness_ms=200, idle_ms=500)
    wm.tick(10_000)
    assert wm.value == NO_TIME  # nothing seen yet: no event time to extrapolate from
    wm.observe(T0, wall_ms=10_000)
    wm.tick(10_500)
    assert wm.value == T0 - 200
    wm.tick(10_800)
    assert wm.value == T0 - 200 + 300
    assert wm.is_closed(T0)
    assert not wm.is_closed(T0 + 1000)


@given(shift=st.integers(min_value=-(10**12), max_value=10**12))
def test_idle_advance_depends_on_wall_clock_differences_only(shift: int) -> None:
    """A replay of old data behaves like live data: only elapsed wall time matters."""
    a, b = Watermark(), Watermark()
    a.observe(T0, wall_ms=5_000)
    b.observe(T0, wall_ms=5_000 + shift)
    a.tick(7_000)
    b.tick(7_000 + shift)
    assert a.value == b.value
