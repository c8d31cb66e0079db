"""The flash-sale bench's ``cluster`` object: the same phases on three brokers, with a leader killed.

Replication factor 3 and min ISR 2, a smaller backlog (``--cluster-attempts``), and the broker leading
the hot SKU's ``orders`` partition SIGKILLed halfway through the timed latency phase.  The figures
name which roles the killed node held (hot partition leaders, the worker's group and transaction
coordinators), since a failover's cost depends on them.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from base.settings import Settings
from bench.common import free_ports
from bench.flash_sale import Tally, bench_topics, latency, run_figures, stop_workers, throughput


def _roles(settings: Settings) -> dict[str, int]:
    """Which node leads the hot partitions and coordinates the worker's group and transaction, so a
    failover figure says what the kill took down.  The transactional id is the flash-sale worker's
    current ``<prefix>flash-sale.p<partition>``."""
    from base.cluster import coordinator_partition
    from base.kafka import make_admin

    topics = make_admin(settings).list_topics(timeout=10).topics

    def leader(topic: str, partition: int) -> int:
        return int(topics[topic].partitions[partition].leader)

    def coordinator(internal: str, key: str) -> int:
        return leader(internal, coordinator_partition(key, len(topics[internal].partitions)))

    return {
        "orders_leader": leader(settings.topic("orders"), 0),
        "order_results_leader": leader(settings.topic("order-results"), 0),
        "group_coordinator": coordinator("__consumer_offsets", settings.topic("flash-sale")),
        "transaction_coordinator": coordinator("__transaction_state", settings.topic("flash-sale.p0")),
    }


def cluster_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The same phases on three brokers (RF 3, min ISR 2), with the hot partition's leader SIGKILLed
    halfway through the timed latency phase."""
    from base.cluster import LocalCluster, nodes_on
    from base.kafka_admin import create_topics

    ports = free_ports(6)
    cluster = LocalCluster(workdir / "cluster", nodes_on(ports[:3], ports[3:]), heap="384m", die_with_parent=True)
    tally = Tally()
    started: list[subprocess.Popen[bytes]] = []
    try:
        start_s = cluster.start()
        settings = Settings.from_env({}).replace(
            kafka_bootstrap=cluster.bootstrap, topic_prefix="bench.", partitions=1, data_dir=str(workdir / "cw"),
            log_format="json", replication_factor=cluster.replication[0],
        )
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        create_topics(settings, bench_topics(), timeout=120)
        rate, per_cpu_s = throughput(settings, args.cluster_attempts, tally, started)

        roles: dict[str, int] = {}

        def kill_hot_leader() -> int:
            roles.update(_roles(settings))
            cluster.kill(roles["orders_leader"])
            return roles["orders_leader"]

        pids = [pid for pid in (node.pid() for node in cluster.nodes.values()) if pid is not None]
        run = latency(settings, args.offered, args.seconds, tally, args.warmup, kill=kill_hot_leader,
                      broker_pids=pids)
        worker_alive = all(w.poll() is None for w in started)
    finally:
        stop_workers(started)
        cluster.stop()
    figures = run_figures(args.cluster_attempts, rate, per_cpu_s, run, tally,
                       [node.gc_log for node in cluster.nodes.values()])
    figures.update({
        "brokers": len(cluster.nodes), "replication_factor": cluster.replication[0],
        "min_insync_replicas": cluster.replication[1], "start_s": round(start_s, 1),
        "killed_node": run.killed_node,
        "killed_node_roles": sorted(role for role, node in roles.items() if node == run.killed_node),
        "failover_s": run.failover_s, "in_flight_at_kill": run.in_flight,
        "longest_answer_gap_after_kill_s": run.longest_gap_s, "worker_process_alive_after_kill": worker_alive,
    })
    return figures
