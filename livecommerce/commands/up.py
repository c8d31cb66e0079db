"""``livecommerce up``: fetch the Kafka jars if needed, start the local broker, create every topic.

Safe to run twice: a broker that is already running and answering is left alone, and existing topics
are kept.  The broker lives in ``<LC_DATA_DIR>/kafka`` and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from base.broker import LocalKafka  # stdlib-only module: keeps --help instant
from base.settings import Settings

HELP = "Start the local Kafka broker (KRaft, loopback only) and create every topic; a no-op if running."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the broker (default 120)")
    parser.add_argument("--no-topics", action="store_true", help="start the broker only; do not create topics")


def local_broker(settings: Settings) -> LocalKafka:
    """The LocalKafka that ``up``/``down``/``status`` manage for these settings (in <LC_DATA_DIR>/kafka)."""
    return LocalKafka(
        Path(settings.data_dir) / "kafka",
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        heap=settings.kafka_heap,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.broker import BrokerError
    from base.kafka_admin import TopicError, create_topics

    broker = local_broker(settings)
    try:
        elapsed = broker.start(timeout=args.timeout)
        if elapsed == 0.0:
            print(f"Kafka already running (pid {broker.pid()}) on {broker.bootstrap}; nothing to do")
        else:
            print(
                f"Kafka started in {elapsed:.1f} s (pid {broker.pid()}) on {broker.bootstrap}, "
                f"data in {broker.data_dir}"
            )
        if settings.kafka_bootstrap != broker.bootstrap:
            print(
                f"note: LC_KAFKA_BOOTSTRAP is {settings.kafka_bootstrap}, but this broker listens on "
                f"{broker.bootstrap}; set LC_KAFKA_BOOTSTRAP={broker.bootstrap} for the other commands",
                file=sys.stderr,
            )
        if not args.no_topics:
            names = create_topics(settings.replace(kafka_bootstrap=broker.bootstrap), timeout=args.timeout)
            print(f"{len(names)} topics ready ({settings.topic_prefix}*, {settings.partitions} partitions each)")
    except (BrokerError, TopicError) as exc:
        print(f"livecommerce up failed: {exc}", file=sys.stderr)
        return 1
    print(f"LC_KAFKA_BOOTSTRAP={broker.bootstrap}")
    return 0
