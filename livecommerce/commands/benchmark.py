"""``livecommerce benchmark --room R [--publish]``: the room's own benchmark from the warehouse.

Per headline metric, the median of the room's streams of the last ``--days`` (14) that have ended,
printed as the ``room_benchmark`` JSON event and, with ``--publish``, produced to the compacted
``room-benchmarks`` topic, where the dashboard reads the latest one per room.  Run it where the
store is owned: with the embedded store, the process that holds it (see README "The warehouse").
"""

from __future__ import annotations

import argparse
import sys

from base.settings import Settings
from livecommerce.commands.report import gap_ms_of

HELP = "A room's benchmark (median of its last 14 days' streams) from ClickHouse; --publish sends it to Kafka."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--room", required=True, action="append", help="room id (repeat for several rooms)")
    parser.add_argument("--days", type=int, default=14, help="streams of this many days before now (default 14)")
    parser.add_argument("--gap-minutes", type=int, default=None,
                        help="quiet minutes that separate two streams of a room (default: LC_STREAM_GAP_S, "
                             "as the sink's own reports use)")
    parser.add_argument("--publish", action="store_true", help="produce each benchmark to the room-benchmarks topic")
    parser.add_argument("--database", help="ClickHouse database (default: the DSN's, else the warehouse default)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.embedded import busy_message

    dsn = settings.effective_clickhouse_dsn
    if not 1 <= args.days <= 365:
        print("error: --days must be 1..365", file=sys.stderr)
        return 2
    if busy := busy_message(dsn):
        print(busy, file=sys.stderr)
        return 3
    from analytics.benchmark import room_benchmark
    from base.clock import now_ms
    from schemas import TOPICS, encode
    from warehouse.client import database_of, get_client

    client = get_client(dsn)
    database = args.database or database_of(dsn)
    now = now_ms()
    benchmarks = [room_benchmark(client, database, room, now_ms=now, days=args.days, gap_ms=gap_ms_of(args, settings))
                  for room in args.room]
    for b in benchmarks:
        print(encode(b).decode())
    if args.publish:
        from base.kafka import make_producer

        producer = make_producer(settings)
        spec = TOPICS["room-benchmarks"]
        for b in benchmarks:
            producer.produce(settings.topic(spec.name), encode(b), spec.key_of(b))
        left = producer.flush(30)
        if left:
            print(f"error: {left} benchmark(s) not confirmed by Kafka at {settings.kafka_bootstrap}", file=sys.stderr)
            return 1
    return 0
