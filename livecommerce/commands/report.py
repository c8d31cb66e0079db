"""``livecommerce report --room R [--stream S | --from T --to T] --out report.html [--csv DIR]``.

The post-stream review of one room from ClickHouse: a self-contained HTML report (charts included,
no network needed to view it) and, with ``--csv``, its tables.  ``--list`` shows the room's streams.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from base.settings import Settings

HELP = "Post-stream report of a room: HTML with charts (--out) and CSV tables (--csv) from ClickHouse."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--room", required=True, help="room id")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stream", help="stream id as --list shows it (default: the room's latest stream)")
    which.add_argument("--from", dest="start", type=parse_time,
                       help="window start: ISO 8601 (UTC if no zone) or epoch ms")
    parser.add_argument("--to", dest="end", type=parse_time, help="window end (exclusive), with --from")
    parser.add_argument("--compare", metavar="STREAM",
                        help="compare with this earlier stream of the room (as --list shows it) instead of the "
                             "previous one")
    parser.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    parser.add_argument("--csv", dest="csv_dir", help="also write the tables as CSV files into this directory")
    parser.add_argument("--list", action="store_true", help="list the room's streams and exit")
    parser.add_argument("--gap-minutes", type=int, default=None,
                        help="quiet minutes that separate two streams of a room (default: LC_STREAM_GAP_S, "
                             "as the sink's own reports use)")
    parser.add_argument("--database", help="ClickHouse database (default: the DSN's, else the warehouse default)")


def parse_time(text: str) -> int:
    """Epoch milliseconds of ``text``: digits are epoch ms; anything else is ISO 8601 (naive = UTC)."""
    if text.strip().isdigit():
        return int(text)
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or epoch ms: {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def run(args: argparse.Namespace, settings: Settings) -> int:
    dsn = settings.effective_clickhouse_dsn
    if (args.start is None) != (args.end is None):
        print("error: --from and --to go together", file=sys.stderr)
        return 2
    if args.start is not None and args.end <= args.start:
        print("error: --to must be after --from", file=sys.stderr)
        return 2
    from warehouse.embedded import busy_message, store_path

    if busy := busy_message(dsn):
        print(busy, file=sys.stderr)
        return 3
    path = store_path(dsn)
    if path is not None and not path.exists():
        print(f"error: no embedded ClickHouse store at {path} (nothing recorded yet?)", file=sys.stderr)
        return 1

    from analytics.build import NothingToReport, Options, build_report, list_streams
    from analytics.export import export_csv
    from analytics.html import render_html
    from analytics.model import iso
    from warehouse.client import DsnError, database_of, get_client
    from warehouse.embedded import BUSY_MESSAGE, is_lock_error

    try:
        client = get_client(dsn)
    except DsnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if is_lock_error(exc):
            print(BUSY_MESSAGE.format(path=path), file=sys.stderr)
            return 3
        raise
    database = args.database or database_of(dsn)
    options = Options(gap_ms=gap_ms_of(args, settings))
    if args.list:
        spans = list_streams(client, database, args.room, options.gap_ms)
        if not spans:
            print(f"room {args.room!r} has no recorded activity")
        for s in spans:
            print(f"{s.stream_id}  {iso(s.start_ms)} → {iso(s.end_ms)}  {s.events:,} events")
        return 0
    try:
        report = build_report(client, database, args.room, stream_id=args.stream, start_ms=args.start,
                              end_ms=args.end, compare=args.compare, options=options)
    except (NothingToReport, LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    f = report.current.figures
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {report.current.label}, {f.unique_viewers:,} viewers, "
          f"GMV paid ¥{f.gmv_paid_cents / 100:,.2f}"
          + (f", compared with {report.previous.label}" if report.previous else ""))
    if report.benchmark is not None:
        worst = ", ".join(f"{t.metric} {t.gap * 100:+.0f}% ({t.level})" for t in report.benchmark.worst
                          if t.gap is not None)
        print(f"against the median of {report.benchmark.streams} earlier stream(s): {worst}")
    if args.csv_dir:
        paths = export_csv(report, args.csv_dir)
        print(f"wrote {len(paths)} CSV files into {args.csv_dir}")
    return 0


def gap_ms_of(args: argparse.Namespace, settings: Settings) -> int:
    """``--gap-minutes`` if given, else the gap the sink's own reports use."""
    return args.gap_minutes * 60_000 if args.gap_minutes is not None else settings.stream_gap_ms
