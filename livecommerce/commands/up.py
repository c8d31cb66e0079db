"""``livecommerce up``: fetch the Kafka jars if needed, start the local broker(s), create every topic.

Safe to run twice: brokers that are already running and answering are left alone, and existing topics
are kept.  One broker lives in ``<LC_DATA_DIR>/kafka``; ``--brokers 3`` starts a three-node KRaft cluster
in ``<LC_DATA_DIR>/kafka-cluster/node-<id>`` instead (replication factor 3, min ISR 2, unclean leader
election off).  Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from base.broker import LocalKafka  # stdlib-only modules: keep --help instant
from base.cluster import LocalCluster, consecutive_nodes
from base.settings import Settings

HELP = "Start the local Kafka broker, or --brokers 3 nodes (KRaft, loopback only), and create every topic."

CLUSTER_DIR = "kafka-cluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the broker(s) (default 180)")
    parser.add_argument("--no-topics", action="store_true", help="start the broker(s) only; do not create topics")
    parser.add_argument(
        "--brokers", type=int, default=None,
        help="1 broker, or a cluster of 3 (default LC_KAFKA_BROKERS); nodes use LC_KAFKA_PORT + 2i "
        "and LC_KAFKA_CONTROLLER_PORT + 2i",
    )


def local_broker(settings: Settings) -> LocalKafka:
    """The single LocalKafka that ``up``/``down``/``status`` manage for these settings (in <LC_DATA_DIR>/kafka)."""
    return LocalKafka(
        Path(settings.data_dir) / "kafka",
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        heap=settings.kafka_heap,
    )


def cluster_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / CLUSTER_DIR


def local_cluster(settings: Settings, brokers: int) -> LocalCluster:
    """The multi-node cluster of these settings on consecutive ports (in <LC_DATA_DIR>/kafka-cluster)."""
    nodes = consecutive_nodes(brokers, settings.kafka_port, settings.kafka_controller_port)
    return LocalCluster(cluster_dir(settings), nodes, heap=settings.kafka_node_heap)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.broker import BrokerError
    from base.kafka_admin import TopicError

    brokers = settings.kafka_brokers if args.brokers is None else args.brokers
    try:
        if brokers < 1:
            raise BrokerError("--brokers must be at least 1")
        if brokers == 1:
            return _up_single(args, settings)
        return _up_cluster(args, settings, brokers)
    except (BrokerError, TopicError, ValueError) as exc:
        print(f"livecommerce up failed: {exc}", file=sys.stderr)
        return 1


def _up_single(args: argparse.Namespace, settings: Settings) -> int:
    broker = local_broker(settings)
    if LocalCluster.from_layout(cluster_dir(settings)) is not None and _cluster_running(settings):
        print("note: a local cluster is running too (livecommerce status)", file=sys.stderr)
    elapsed = broker.start(timeout=args.timeout)
    if elapsed == 0.0:
        print(f"Kafka already running (pid {broker.pid()}) on {broker.bootstrap}; nothing to do")
    else:
        print(f"Kafka started in {elapsed:.1f} s (pid {broker.pid()}) on {broker.bootstrap}, data in {broker.data_dir}")
    if settings.kafka_bootstrap != broker.bootstrap:
        print(
            f"note: LC_KAFKA_BOOTSTRAP is {settings.kafka_bootstrap}, but this broker listens on "
            f"{broker.bootstrap}; set LC_KAFKA_BOOTSTRAP={broker.bootstrap} for the other commands",
            file=sys.stderr,
        )
    _create_topics(args, settings.replace(kafka_bootstrap=broker.bootstrap))
    print(f"LC_KAFKA_BOOTSTRAP={broker.bootstrap}")
    return 0


def _up_cluster(args: argparse.Namespace, settings: Settings, brokers: int) -> int:
    if local_broker(settings).pid() is not None:
        print("note: the single local broker runs too; `livecommerce down` stops both", file=sys.stderr)
    cluster = local_cluster(settings, brokers)
    elapsed = cluster.start(timeout=args.timeout)
    pids = ", ".join(f"node {i} pid {pid}" for i, pid in cluster.pids().items())
    if elapsed == 0.0:
        print(f"Kafka cluster already running ({pids}) on {cluster.bootstrap}; nothing to do")
    else:
        print(f"Kafka cluster of {brokers} started in {elapsed:.1f} s ({pids}) on {cluster.bootstrap}, "
              f"data in {cluster.data_dir}")
    replication, min_isr = cluster.replication
    print(f"replication factor {replication}, min.insync.replicas {min_isr}, unclean leader election off")
    _create_topics(args, settings.replace(
        kafka_bootstrap=cluster.bootstrap, replication_factor=max(replication, settings.replication_factor)
    ))
    print(f"LC_KAFKA_BOOTSTRAP={cluster.bootstrap}")
    return 0


def _cluster_running(settings: Settings) -> bool:
    cluster = LocalCluster.from_layout(cluster_dir(settings))
    return cluster is not None and any(pid is not None for pid in cluster.pids().values())


def _create_topics(args: argparse.Namespace, settings: Settings) -> None:
    if args.no_topics:
        return
    from base.kafka_admin import create_topics
    from schemas import TOPICS

    names = create_topics(settings, TOPICS.values(), timeout=args.timeout)
    print(f"{len(names)} topics ready ({settings.topic_prefix}*, {settings.partitions} partitions each, "
          f"replication factor {settings.replication_factor})")
