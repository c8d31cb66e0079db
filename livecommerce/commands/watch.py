"""``livecommerce watch``: the rooms' live counters in a terminal (an operator's view without a browser).

Readable at 80 columns: the table keeps the columns that matter most and drops the others as the
terminal narrows (:func:`columns_for`).  When the output is piped (not a terminal) it prints one
plain line per room and snapshot instead of redrawing (no control codes), each as wide as
``COLUMNS`` (80 when unset), so ``watch | grep`` and logs stay readable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from base.settings import Settings

if TYPE_CHECKING:
    from rich.table import Table

    from schemas import RoomCounters

HELP = "Show every room's live counters from the room-counters topic (a table on a terminal, lines when piped)."


def _money(cents: float) -> str:
    return f"¥{cents / 100:,.0f}" if cents >= 100_000 else f"¥{cents / 100:,.2f}"


#: (header, width, value) in order of importance: narrow terminals keep the first ones.
COLUMNS: list[tuple[str, int, Callable[[RoomCounters], str]]] = [
    ("room", 10, lambda c: c.room_id),
    ("online", 6, lambda c: str(c.online)),
    ("GMV paid", 11, lambda c: _money(c.gmv_paid_cents_total)),
    ("orders", 6, lambda c: str(c.orders_accepted_total)),
    ("cmt/s", 5, lambda c: str(c.comments)),
    ("mood", 5, lambda c: "-" if c.sentiment_avg is None else f"{c.sentiment_avg:+.2f}"),
    ("conv", 6, lambda c: f"{c.conversion_rate:.1%}"),
    ("likes/s", 7, lambda c: str(c.likes)),
    ("peak", 6, lambda c: str(c.peak_online)),
    ("viewers", 7, lambda c: str(c.unique_viewers)),
    ("GMV held", 11, lambda c: _money(c.gmv_reserved_cents_total)),
    ("attempts", 8, lambda c: str(c.order_attempts_total)),
    ("late", 5, lambda c: str(c.late_events)),
    ("window", 8, lambda c: time.strftime("%H:%M:%S", time.localtime(c.window_start / 1000))),
]


def columns_for(width: int) -> list[tuple[str, int, Callable[[RoomCounters], str]]]:
    """The most important columns that fit ``width`` characters (3 per column for borders and padding)."""
    chosen: list[tuple[str, int, Callable[[RoomCounters], str]]] = []
    used = 1
    for column in COLUMNS:
        if used + column[1] + 3 > width and chosen:
            break
        chosen.append(column)
        used += column[1] + 3
    return chosen


def line_of(snap: RoomCounters, width: int | None = None) -> str:
    """One plain line per snapshot, for pipes: ``name=value`` pairs separated by spaces, the most
    important first, as many as fit ``width`` characters (every one when ``width`` is None).  The
    room comes first and is shortened with ``~`` if even it does not fit."""
    pairs = [f"{header.replace(' ', '_')}={value(snap)}" for header, _, value in COLUMNS]
    if width is None:
        return " ".join(pairs)
    line = pairs[0] if len(pairs[0]) <= width else pairs[0][: max(width - 1, 0)] + "~"
    for pair in pairs[1:]:
        if len(line) + 1 + len(pair) <= width:
            line += " " + pair
    return line


def render(latest: dict[str, RoomCounters], width: int) -> Table:
    from rich.table import Table

    columns = columns_for(width)
    table = Table(title="livecommerce — live rooms", width=width)
    for header, size, _ in columns:
        table.add_column(header, justify="left" if header == "room" else "right", min_width=min(size, len(header)),
                         no_wrap=True, overflow="ellipsis")
    for _, snap in sorted(latest.items()):
        table.add_row(*(value(snap) for _, _, value in columns))
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (default: never)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.kafka import make_consumer
    from schemas import RoomCounters, ValidationError, decode

    consumer = make_consumer(settings, f"{settings.topic_prefix}watch-{time.time_ns()}",
                             {"auto.offset.reset": "latest", "isolation.level": "read_committed"})
    consumer.subscribe([settings.topic("room-counters")])
    latest: dict[str, RoomCounters] = {}
    deadline = time.monotonic() + args.seconds if args.seconds else None
    piped = not sys.stdout.isatty()

    def poll() -> list[RoomCounters]:
        fresh = []
        for msg in consumer.consume(num_messages=500, timeout=0.25):
            raw = msg.value()
            if msg.error() or raw is None:
                continue
            try:
                snap = decode(RoomCounters, raw, now_ms=2**62)
            except ValidationError:
                continue
            prev = latest.get(snap.room_id)
            if prev is None or snap.window_start >= prev.window_start:
                latest[snap.room_id] = snap
                fresh.append(snap)
        return fresh

    try:
        if piped:
            width = shutil.get_terminal_size().columns  # COLUMNS when set, else 80
            while deadline is None or time.monotonic() < deadline:
                for snap in poll():
                    print(line_of(snap, width), flush=True)
        else:
            from rich.live import Live

            with Live(render(latest, shutil.get_terminal_size().columns), refresh_per_second=4) as live:
                while deadline is None or time.monotonic() < deadline:
                    poll()
                    live.update(render(latest, shutil.get_terminal_size().columns))
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        consumer.close()
    return 0
