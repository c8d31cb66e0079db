"""The pure configuration of a local Kafka node: ``server.properties``, log4j2, cluster ids.

Pure functions over plain values, unit-tested without Java; :mod:`base.broker` (one node) and
:mod:`base.cluster` (several) write what these return.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence

NODE_ID = 1


def server_properties(
    log_dir: str,
    port: int,
    controller_port: int,
    node_id: int = NODE_ID,
    voters: Sequence[tuple[int, int]] | None = None,
) -> dict[str, str]:
    """A node's ``server.properties``: combined broker+controller on loopback, one of ``voters``.

    ``voters`` are the (node id, controller port) pairs of every node of the cluster; ``None`` means a
    single-node cluster of this node.  Replication follows the cluster's size: one node gives every
    internal topic replication factor 1 and min ISR 1 (otherwise the first consumer group or
    transaction would wait forever for replicas that do not exist); three or more nodes give
    replication factor 3 and min ISR 2, so an acknowledged (``acks=all``) record is on two disks and
    one node may die without losing it or stopping writes.  Unclean leader election stays off: an
    out-of-sync replica never becomes leader, which would silently drop acknowledged records.  Static
    voters (not ``--standalone``) keep the controller endpoints out of the formatted log, so a data dir
    can be restarted on other ports.
    """
    voters = list(voters) if voters is not None else [(node_id, controller_port)]
    if node_id not in {vid for vid, _ in voters}:
        raise ValueError(f"node {node_id} is not one of the voters {voters}")
    replication, min_isr = replication_for(len(voters))
    return {**_failure_detection(len(voters)),
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": ",".join(f"{vid}@127.0.0.1:{vport}" for vid, vport in voters),
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": log_dir,
        # Topics are created explicitly with their partition counts (partitioning is the SKU lock).
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        # A single member should not wait 3 s for others that will never come.
        "group.initial.rebalance.delay.ms": "0",
        # Two shared cores: few threads; small segments and a two-day retention keep the disk bounded.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.replica.fetchers": "1",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.hours": "48",
        "log.retention.bytes": str(1024 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
    }


def _failure_detection(nodes: int) -> dict[str, str]:
    """How fast the controller fences a dead broker and moves its partition leaders: Kafka's default
    session of 9 s was most of a measured 10-15 s failover after a SIGKILL.  Heartbeats every 0.5 s
    and a 4 s session still ride out the longest broker GC pause measured on this busy machine
    (0.3 s) many times over.  A single node has nobody to fail over to: defaults."""
    if nodes == 1:
        return {}
    return {"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "4000"}


def replication_for(nodes: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) of a cluster of ``nodes``: (1, 1) alone, else (3, 2)
    (two nodes: (2, 1), since min ISR 2 of 2 would stop every write when either node is down)."""
    if nodes < 1:
        raise ValueError("a cluster has at least one node")
    replication = min(3, nodes)
    return replication, max(1, replication - 1)


def log4j2_properties(log_file: str) -> str:
    """A quiet log4j2 config: warnings and the start/stop lines, to a size-capped file in the data dir."""
    return "\n".join(
        [
            "status = warn",
            "appender.file.type = RollingFile",
            "appender.file.name = file",
            f"appender.file.fileName = {log_file}",
            f"appender.file.filePattern = {log_file}.%i",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "appender.file.policies.type = Policies",
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size = 10MB",
            "appender.file.strategy.type = DefaultRolloverStrategy",
            "appender.file.strategy.max = 2",
            "rootLogger.level = warn",
            "rootLogger.appenderRef.file.ref = file",
            "logger.raftserver.name = kafka.server.KafkaRaftServer",
            "logger.raftserver.level = info",
            "",
        ]
    )


def render_properties(props: Mapping[str, str]) -> str:
    """Java properties text, one ``key=value`` a line, in a stable order."""
    for key, value in props.items():
        if any(c in key for c in "=:\n \\") or "\n" in value:
            raise ValueError(f"property {key!r}={value!r} cannot be written without escaping")
    return "".join(f"{key}={value}\n" for key, value in sorted(props.items()))


def parse_properties(text: str) -> dict[str, str]:
    """Inverse of :func:`render_properties` (also reads ``meta.properties`` written by Kafka)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        result[key.strip()] = value.strip()
    return result


def cluster_id_from_bytes(raw: bytes) -> str:
    """A KRaft cluster id: 16 bytes as unpadded URL-safe base64 (22 chars), like Kafka's ``Uuid.toString``."""
    if len(raw) != 16:
        raise ValueError(f"a cluster id is 16 bytes, got {len(raw)}")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_cluster_id() -> str:
    """A fresh random cluster id that Kafka accepts.

    Kafka's own generator redraws ids that start with ``-`` (they look like a command-line flag) and
    the all-zero id (reserved); so do we.
    """
    while True:
        candidate = cluster_id_from_bytes(os.urandom(16))
        if not candidate.startswith("-") and candidate != cluster_id_from_bytes(bytes(16)):
            return candidate
