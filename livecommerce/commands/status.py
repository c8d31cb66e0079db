"""``livecommerce status``: are the local broker or cluster nodes running and answering, and their topics.

Exit status follows the LSB convention so scripts can test it: 0 running and answering, 1 running but
not answering (starting, or wedged; for a cluster: any node down or not answering), 3 not running.
A cluster is shown node by node (pid, port, answering) with its active KRaft controller, read from the
nodes' ``quorum-state`` files.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from base.settings import Settings

HELP = "Show whether the local Kafka broker or cluster runs and answers, and its topics (exit 0 up, 1 not, 3 down)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _topics(bootstrap: str, prefix: str) -> list[str]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return sorted(t for t in admin.list_topics(timeout=5).topics if t.startswith(prefix))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from base.cluster import LocalCluster
    from livecommerce.commands.up import cluster_dir, local_broker

    cluster = LocalCluster.from_layout(cluster_dir(settings))
    broker = local_broker(settings)
    if cluster is not None and (broker.pid() is None or any(p is not None for p in cluster.pids().values())):
        return _cluster_status(args, settings, cluster)
    pid = broker.pid()
    answering = pid is not None and broker.is_answering()
    topics = _topics(broker.bootstrap, settings.topic_prefix) if answering else []
    code = 0 if answering else (1 if pid is not None else 3)
    state = {0: "running", 1: "not answering", 3: "stopped"}[code]
    if args.json:
        print(json.dumps({
            "state": state, "pid": pid, "bootstrap": broker.bootstrap, "data_dir": str(broker.data_dir),
            "topics": topics,
        }))
    else:
        where = f" on {broker.bootstrap}, data in {broker.data_dir}"
        print(f"Kafka {state}" + (f" (pid {pid})" if pid else "") + where)
        if answering:
            print(f"{len(topics)} topics with prefix {settings.topic_prefix!r}: {', '.join(topics) or '-'}")
    return code


def _cluster_status(args: argparse.Namespace, settings: Settings, cluster: Any) -> int:
    pids = cluster.pids()
    answering = cluster.answering() if any(p is not None for p in pids.values()) else set()
    nodes = [
        {"node_id": i, "pid": pids[i], "port": node.port, "controller_port": node.controller_port,
         "up": i in answering, "data_dir": str(node.data_dir)}
        for i, node in cluster.nodes.items()
    ]
    up_bootstrap = ",".join(cluster.nodes[i].bootstrap for i in sorted(answering))
    topics = _topics(up_bootstrap, settings.topic_prefix) if answering else []
    code = 0 if answering == set(cluster.nodes) else (1 if any(p is not None for p in pids.values()) else 3)
    state = {0: "running", 1: "degraded", 3: "stopped"}[code]
    controller = cluster.active_controller() if answering else None
    if args.json:
        print(json.dumps({
            "state": state, "brokers": len(nodes), "bootstrap": cluster.bootstrap, "data_dir": str(cluster.data_dir),
            "controller": controller, "nodes": nodes, "topics": topics,
        }))
        return code
    print(f"Kafka cluster of {len(nodes)} {state} on {cluster.bootstrap}, data in {cluster.data_dir}")
    for node in nodes:
        role = " (active controller)" if node["node_id"] == controller else ""
        print(f"  node {node['node_id']}: {'up' if node['up'] else 'down'}, pid {node['pid'] or '-'}, "
              f"port {node['port']}, controller port {node['controller_port']}{role}")
    if answering:
        print(f"{len(topics)} topics with prefix {settings.topic_prefix!r}: {', '.join(topics) or '-'}")
    return code
