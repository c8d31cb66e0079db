"""``livecommerce down``: stop the local Kafka broker and/or cluster nodes started by ``up`` (by PID file).

Both layouts are looked for, the single broker in ``<LC_DATA_DIR>/kafka`` and the nodes recorded in
``<LC_DATA_DIR>/kafka-cluster/cluster.json``, so ``down`` needs no ``--brokers`` to find what ``up`` started.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from base.settings import Settings

HELP = "Stop the local Kafka broker or cluster (SIGTERM, then SIGKILL after --timeout); --delete-data wipes its data."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a clean shutdown (default 60)")
    parser.add_argument(
        "--delete-data", action="store_true",
        help="also delete <LC_DATA_DIR>/kafka and <LC_DATA_DIR>/kafka-cluster (all topics and messages)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.broker import BrokerError
    from base.cluster import LocalCluster
    from livecommerce.commands.up import cluster_dir, local_broker

    broker = local_broker(settings)
    cluster = LocalCluster.from_layout(cluster_dir(settings))
    pid = broker.pid()
    try:
        stopped = broker.stop(timeout=args.timeout)
        pids = cluster.pids() if cluster is not None else {}
        stopped_nodes = cluster.stop(timeout=args.timeout) if cluster is not None else []
    except BrokerError as exc:
        print(f"livecommerce down failed: {exc}", file=sys.stderr)
        return 1
    if stopped or cluster is None:
        print(f"Kafka stopped (pid {pid})" if stopped else f"Kafka was not running (data in {broker.data_dir})")
    if cluster is not None:
        if stopped_nodes:
            print("Kafka cluster stopped (" + ", ".join(f"node {i} pid {pids[i]}" for i in stopped_nodes) + ")")
        else:
            print(f"Kafka cluster was not running (data in {cluster.data_dir})")
    if args.delete_data:
        for path in (broker.data_dir, cluster_dir(settings)):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                print(f"deleted {path}")
    return 0
