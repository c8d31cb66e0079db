"""``livecommerce topics``: create every topic on the configured cluster (docker-compose's init step)."""

from __future__ import annotations

import argparse

from base.settings import Settings

HELP = ("Create every Kafka topic, and the stateful jobs' changelogs, with their partitions and configs on "
        "LC_KAFKA_BOOTSTRAP (existing ones are kept)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the cluster")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.kafka_admin import create_topics
    from schemas import TOPICS
    from streams.changelogs import create_changelogs

    for name in create_topics(settings, TOPICS.values(), timeout=args.timeout):
        print(name)
    for name in create_changelogs(settings, timeout=args.timeout):
        print(name)
    return 0
