"""``livecommerce simulate``: a simulated live stream into Kafka, with its ground truth.

Rooms fill up, chat (Chinese and English, slang, emoji, sarcasm), tap likes, rush a flash sale
whose hot SKU has far more buyers than stock, retry orders, pay or cancel, plus an optional share of
broken messages for the dead-letter path.  The same ``--seed`` always sends the same messages.
The summary JSON on the last line of stdout is the ground truth to check the pipeline against.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from base.settings import Settings

if TYPE_CHECKING:
    from simulator.config import ScenarioConfig
    from simulator.producer import SendReport
    from simulator.truth import Truth

HELP = "Send a simulated live stream (viewers, chat, likes, flash-sale orders) to Kafka; prints the ground truth."


def _start_ts(text: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC if no offset is given)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start-ts: {text!r} is neither epoch ms nor an ISO time") from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--rooms", type=int, default=1, help="live rooms streaming at once (default 1)")
    a("--duration", type=int, default=600, help="event-time length of the stream in seconds (default 600)")
    a("--viewers", type=int, default=500, help="peak audience per room (default 500)")
    a("--comment-rate", type=float, default=0.5, help="comments per viewer per minute (default 0.5)")
    a("--like-rate", type=float, default=6.0, help="like taps per viewer per minute (default 6)")
    a("--skus", type=int, default=3, help="flash-sale SKUs per room; the first is the hot one (default 3)")
    a("--stock", type=int, default=100, help="units opened per SKU (default 100)")
    a("--buyers", type=int, default=500, help="distinct buyers of the hot SKU per room (default 500)")
    a("--restock", type=int, default=0, help="units added to the hot SKU during the sale (default 0: none)")
    a("--no-close", action="store_true", help="do not send SaleConfig close at the end of the sale window")
    a("--ttl", type=int, default=120, help="reservation TTL in seconds written into the sale (default 120)")
    a("--retry-share", type=float, default=0.05, help="share of orders retried with the same order_id")
    a("--pay-share", type=float, default=0.7, help="share of distinct orders the buyer pays for (default 0.7)")
    a("--cancel-share", type=float, default=0.1, help="share of distinct orders cancelled (default 0.1)")
    a("--invalid-share", type=float, default=0.0, help="share of deliberately invalid messages (default 0)")
    a("--late-share", type=float, default=0.05, help="share of events that arrive late (default 0.05)")
    a("--jitter-ms", type=int, default=2000, help="most a late event is late by, ms (default 2000)")
    a("--seed", type=int, default=0, help="the same seed sends the same messages (default 0)")
    a("--speed", type=float, default=1.0, help="event time per wall time: 1 = real time, 0 = as fast as possible")
    a("--rate", type=float, default=0.0, help="cap in messages per second (default 0: no cap)")
    a(
        "--start-ts", type=_start_ts, default=None,
        help="event time of the first second, epoch ms or ISO time (default: now for --speed 1; "
        "otherwise now minus the duration, so that no valid event is stamped in the future)",
    )
    a("--dry-run", action="store_true", help="generate and count without Kafka (measures the generator)")
    a("--json", action="store_true", help="print only the summary JSON (as the last line of stdout)")


def scenario_from_args(args: argparse.Namespace, now_ms: int) -> ScenarioConfig:
    from simulator.config import ScenarioConfig

    start = args.start_ts
    if start is None:
        start = now_ms if args.speed == 1 else now_ms - args.duration * 1000
    return ScenarioConfig(
        seed=args.seed, rooms=args.rooms, duration_s=args.duration, start_ts=start,
        peak_viewers=args.viewers, comment_rate=args.comment_rate, like_rate=args.like_rate,
        skus=args.skus, stock=args.stock, buyers=args.buyers, invalid_share=args.invalid_share,
        late_share=args.late_share, jitter_ms=args.jitter_ms, retry_share=args.retry_share,
        pay_share=args.pay_share, cancel_share=args.cancel_share, restock=args.restock,
        close_sales=not args.no_close, reservation_ttl_s=args.ttl,
    )


def summary(config: ScenarioConfig, truth: Truth, report: SendReport, *, dry_run: bool) -> dict[str, Any]:
    return {"scenario": asdict(config), "dry_run": dry_run, "send": report.to_dict(), "truth": truth.to_dict()}


def _print_tables(truth: Truth, report: SendReport, *, dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rooms = Table(title="ground truth per room")
    columns = ("room", "viewers", "joins", "leaves", "comments", "likes", "orders", "order ids", "paid", "cancelled")
    for name in columns:
        rooms.add_column(name, justify="left" if name == "room" else "right", no_wrap=name == "room")
    for room_id, r in truth.rooms.items():
        rooms.add_row(
            room_id, *(f"{v:,}" for v in (
                r.unique_viewers, r.joins, r.leaves, r.comments, r.likes, r.order_attempts,
                r.distinct_order_ids, r.payments_paid, r.payments_cancelled,
            )),
        )
    topics = Table(title="messages per topic")
    for name in ("topic", "messages", "valid", "invalid"):
        topics.add_column(name, justify="left" if name == "topic" else "right")
    for topic, t in sorted(truth.topics.items()):
        topics.add_row(topic, f"{t.messages:,}", f"{t.valid:,}", f"{t.invalid:,}")
    topics.add_row("[b]total", f"[b]{truth.messages:,}", f"{truth.valid:,}", f"{truth.invalid:,}")
    console.print(rooms)
    console.print(topics)
    if dry_run:
        console.print(f"dry run: generated {report.sent:,} messages in {report.elapsed_s:.2f} s "
                      f"({report.messages_per_s:,.0f}/s), nothing sent")
        return
    console.print(
        f"sent {report.sent:,}, delivered {report.delivered:,}, failed {report.failed:,} in "
        f"{report.elapsed_s:.2f} s ({report.messages_per_s:,.0f} messages/s, compression {report.compression})"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulator.generator import simulate
    from simulator.pacing import Pacer
    from simulator.producer import ProducerError, SendReport, make_producer, send
    from simulator.truth import Outgoing

    try:
        config = scenario_from_args(args, int(time.time() * 1000))
        pacer = Pacer(start_ms=config.start_ts, speed=args.speed, rate=args.rate)
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    simulation = simulate(config)
    progress = Progress(
        TextColumn("[bold]simulate"), BarColumn(), TextColumn("{task.percentage:>5.1f}% of event time"),
        TextColumn("{task.fields[sent]:>10,} sent"), TextColumn("{task.fields[rate]:>9,.0f}/s"),
        TimeElapsedColumn(), transient=args.json, console=Console(stderr=True),
    )
    task = progress.add_task("send", total=config.duration_s * 1000, sent=0, rate=0.0)

    def on_progress(item: Outgoing, report: SendReport) -> None:
        elapsed = time.monotonic() - started
        rate = report.sent / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=min(item.emit_ms - config.start_ts, config.duration_s * 1000),
                        sent=report.sent, rate=rate)

    interrupted = False
    started = time.monotonic()
    with progress:
        if args.dry_run:
            report = SendReport(compression="n/a")
            try:
                for item in simulation:
                    report.sent += 1
                    if report.sent % 2000 == 0:
                        on_progress(item, report)
            except KeyboardInterrupt:
                interrupted = report.interrupted = True
            report.elapsed_s = time.monotonic() - started
        else:
            try:
                producer, codec = make_producer(settings)
            except ProducerError as exc:
                progress.stop()
                print(f"simulate: {exc}", file=sys.stderr)
                return 2
            started = time.monotonic()
            report = send(simulation, settings, pacer, producer=producer, compression=codec, on_progress=on_progress)
            interrupted = report.interrupted
    truth = simulation.truth
    if not args.json:
        _print_tables(truth, report, dry_run=args.dry_run)
    print(json.dumps(summary(config, truth, report, dry_run=args.dry_run), ensure_ascii=False), flush=True)
    if interrupted:
        return 130
    return 1 if report.failed else 0
