"""``livecommerce watch``: the rooms' live counters as a console table (an operator's view without a browser)."""

from __future__ import annotations

import argparse
import time

from base.settings import Settings

HELP = "Show every room's live counters from the room-counters topic as a refreshing console table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (default: never)")


def _money(cents: float) -> str:
    return f"¥{cents / 100:,.2f}"


def render(latest: dict[str, object]) -> object:
    """A rich Table of the latest RoomCounters per room."""
    from rich.table import Table

    table = Table(title="livecommerce — live rooms", expand=True)
    for col in ("room", "window", "online", "peak", "viewers", "comments/s", "likes/s",
                "comments", "likes", "orders", "accepted", "GMV reserved", "GMV paid", "conv.", "sentiment", "late"):
        table.add_column(col, justify="right" if col != "room" else "left")
    for room, c in sorted(latest.items()):
        table.add_row(
            room,
            time.strftime("%H:%M:%S", time.localtime(c.window_start / 1000)),  # type: ignore[attr-defined]
            str(c.online), str(c.peak_online), str(c.unique_viewers),  # type: ignore[attr-defined]
            str(c.comments), str(c.likes), str(c.comments_total), str(c.likes_total),  # type: ignore[attr-defined]
            str(c.order_attempts_total), str(c.orders_accepted_total),  # type: ignore[attr-defined]
            _money(c.gmv_reserved_cents_total), _money(c.gmv_paid_cents_total),  # type: ignore[attr-defined]
            f"{c.conversion_rate:.1%}",  # type: ignore[attr-defined]
            "-" if c.sentiment_avg is None else f"{c.sentiment_avg:+.2f}",  # type: ignore[attr-defined]
            str(c.late_events),  # type: ignore[attr-defined]
        )
    return table


def run(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import Consumer
    from rich.live import Live

    from schemas import RoomCounters, ValidationError, decode

    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"{settings.topic_prefix}watch-{time.time_ns()}",
        "auto.offset.reset": "latest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    consumer.subscribe([settings.topic("room-counters")])
    latest: dict[str, object] = {}
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        with Live(render(latest), refresh_per_second=4) as live:
            while deadline is None or time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=0.25):
                    if msg.error() or msg.value() is None:
                        continue
                    try:
                        snap = decode(RoomCounters, msg.value(), now_ms=2**62)
                    except ValidationError:
                        continue
                    prev = latest.get(snap.room_id)
                    if prev is None or snap.window_start >= prev.window_start:  # type: ignore[attr-defined]
                        latest[snap.room_id] = snap
                live.update(render(latest))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
