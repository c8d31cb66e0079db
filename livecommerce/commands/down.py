"""``livecommerce down``: stop the local Kafka broker started by ``up`` (by its PID file)."""

from __future__ import annotations

import argparse
import shutil
import sys

from base.settings import Settings

HELP = "Stop the local Kafka broker (SIGTERM, then SIGKILL after --timeout); --delete-data wipes its data."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a clean shutdown (default 60)")
    parser.add_argument(
        "--delete-data", action="store_true", help="also delete <LC_DATA_DIR>/kafka (all topics and messages)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.broker import BrokerError
    from livecommerce.commands.up import local_broker

    broker = local_broker(settings)
    pid = broker.pid()
    try:
        stopped = broker.stop(timeout=args.timeout)
    except BrokerError as exc:
        print(f"livecommerce down failed: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka stopped (pid {pid})" if stopped else f"Kafka was not running (data in {broker.data_dir})")
    if args.delete_data:
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        print(f"deleted {broker.data_dir}")
    return 0
