"""``livecommerce watch`` stays readable in an 80-column terminal and when piped."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from livecommerce.commands.watch import COLUMNS, columns_for, line_of, render
from schemas import RoomCounters

T0 = 1_700_000_000_000


def snap(room: str, gmv: int = 123_456_789) -> RoomCounters:
    return RoomCounters(room_id=room, window_start=T0, window_end=T0 + 1000, online=12345, peak_online=20000,
                        unique_viewers=99999, comments=321, likes=4567, comments_total=10**6, likes_total=10**7,
                        order_attempts_total=8888, orders_accepted_total=7777, gmv_reserved_cents_total=gmv,
                        gmv_paid_cents_total=gmv, conversion_rate=0.0778, sentiment_avg=0.42, ts=T0)


@given(st.integers(40, 200))
def test_the_chosen_columns_fit_the_width_and_keep_the_most_important_first(width: int) -> None:
    chosen = columns_for(width)
    assert chosen == COLUMNS[: len(chosen)]
    assert 1 + sum(size + 3 for _, size, _ in chosen) <= width or len(chosen) == 1


def test_an_80_column_terminal_gets_no_line_longer_than_80() -> None:
    out = io.StringIO()
    Console(file=out, width=80, force_terminal=False, color_system=None).print(
        render({f"room-{i}": snap(f"room-{i}") for i in range(3)}, 80))
    lines = out.getvalue().splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert any("room-1" in line and "12345" in line for line in lines)  # the values are there, not cut away


def test_a_pipe_gets_one_plain_line_per_snapshot_with_every_value() -> None:
    line = line_of(snap("r1"))
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("room=r1 online=12345 GMV_paid=")
    assert "orders=7777" in line and "mood=+0.42" in line


@given(st.integers(1, 200), st.text(alphabet="abc-_.:0123456789", min_size=1, max_size=64),
       st.integers(0, 2**53 - 1))
def test_a_piped_line_fits_its_width_and_keeps_the_most_important_values(width: int, room: str, gmv: int) -> None:
    full = line_of(snap(room, gmv)).split(" ")
    line = line_of(snap(room, gmv), width)
    assert len(line) <= width and "\x1b" not in line and "\n" not in line
    kept = line.split(" ")
    if len(f"room={room}") <= width:
        assert kept[0] == f"room={room}"
        assert all(pair in full for pair in kept)
        assert [p for p in full if p in kept] == kept  # the order of importance is kept
    if width >= 80 and len(room) <= 10:
        assert kept[:4] == full[:4]  # room, online, GMV paid, orders always fit 80 columns
