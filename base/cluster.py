"""A real local Kafka cluster of several KRaft nodes (each a combined controller+broker) on loopback.

Why: one broker with replication factor 1 loses acknowledged orders when it dies.  Three nodes with
replication factor 3, ``min.insync.replicas`` 2 and unclean leader election off keep every record a
producer saw acknowledged (``acks=all``) through the loss of any one node, and keep accepting writes.
Each node is a :class:`base.broker.LocalKafka` in its own data dir with a small heap; they share one
cluster id (formatted once) and one list of controller voters.  The layout (ports, data dirs) is
written to ``cluster.json`` so that ``down`` and ``status`` find every node without being told.

The port plan and the layout file are pure functions at the top; :class:`LocalCluster` is the shell.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from base.broker import LIB_DIR, BrokerError, LocalKafka, new_cluster_id, port_in_use, replication_for

LAYOUT_FILE = "cluster.json"


@dataclass(frozen=True)
class NodeSpec:
    """One node of the cluster: its id, client port and controller port (data dir: ``node-<id>``)."""

    node_id: int
    port: int
    controller_port: int


def consecutive_nodes(brokers: int, port: int, controller_port: int) -> list[NodeSpec]:
    """Node ``i`` (1-based) listens on ``port + 2(i-1)`` and ``controller_port + 2(i-1)``.

    With the defaults (19092, 19093) that is 19092/19093, 19094/19095, 19096/19097: consecutive and
    disjoint.  Port pairs that would collide (e.g. 19092 and 19094) are refused with the fix.
    """
    if brokers < 1:
        raise ValueError("a cluster has at least one broker")
    nodes = [NodeSpec(i + 1, port + 2 * i, controller_port + 2 * i) for i in range(brokers)]
    used = [p for n in nodes for p in (n.port, n.controller_port)]
    if len(set(used)) != len(used) or max(used) > 65535 or min(used) < 1:
        raise ValueError(
            f"{brokers} nodes from ports {port}/{controller_port} (stride 2) overlap or leave 1-65535: {used}; "
            "set LC_KAFKA_CONTROLLER_PORT to LC_KAFKA_PORT + 1"
        )
    return nodes


def nodes_on(ports: Sequence[int], controller_ports: Sequence[int]) -> list[NodeSpec]:
    """Nodes on given ports (e.g. free ports picked by a test), ids 1..n."""
    if len(ports) != len(controller_ports) or not ports:
        raise ValueError("one controller port per port, and at least one node")
    return [NodeSpec(i + 1, p, c) for i, (p, c) in enumerate(zip(ports, controller_ports, strict=True))]


def voters_of(nodes: Sequence[NodeSpec]) -> list[tuple[int, int]]:
    return [(n.node_id, n.controller_port) for n in nodes]


def layout_json(cluster_id: str, nodes: Sequence[NodeSpec]) -> str:
    return json.dumps({"cluster_id": cluster_id, "nodes": [asdict(n) for n in nodes]}, indent=2) + "\n"


def parse_layout(text: str) -> tuple[str, list[NodeSpec]]:
    raw = json.loads(text)
    return str(raw["cluster_id"]), [NodeSpec(int(n["node_id"]), int(n["port"]), int(n["controller_port"]))
                                    for n in raw["nodes"]]


def quorum_leader(states: Sequence[str]) -> int | None:
    """The active controller from the nodes' ``quorum-state`` files (KRaft writes its view of the
    leader and epoch there): the leader named at the highest epoch, or None if nobody names one."""
    best: tuple[int, int] | None = None
    for text in states:
        try:
            raw = json.loads(text)
            epoch, leader = int(raw.get("leaderEpoch", -1)), int(raw.get("leaderId", -1))
        except (ValueError, TypeError, AttributeError):
            continue
        if leader >= 0 and (best is None or epoch > best[0]):
            best = (epoch, leader)
    return None if best is None else best[1]


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (signed 32-bit), which Kafka uses to place coordinators."""
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():  # UTF-16 code units, as Java strings hold
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def coordinator_partition(key: str, partitions: int) -> int:
    """The partition of ``__consumer_offsets`` (group id) or ``__transaction_state`` (transactional id)
    whose leader coordinates ``key``: ``Utils.abs(key.hashCode()) % partitions`` in Kafka."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class LocalCluster:
    """``len(nodes)`` KRaft nodes in ``data_dir/node-<id>``, one cluster id kept in ``cluster.json``."""

    def __init__(
        self,
        data_dir: str | Path,
        nodes: Sequence[NodeSpec],
        heap: str = "384m",
        lib_dir: Path = LIB_DIR,
        die_with_parent: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.specs = list(nodes)
        self.heap = heap
        layout = self.data_dir / LAYOUT_FILE
        cluster_id = parse_layout(layout.read_text())[0] if layout.exists() else new_cluster_id()
        self.cluster_id = cluster_id
        voters = voters_of(self.specs)
        self.nodes = {
            n.node_id: LocalKafka(
                self.data_dir / f"node-{n.node_id}", port=n.port, controller_port=n.controller_port, heap=heap,
                lib_dir=lib_dir, die_with_parent=die_with_parent, node_id=n.node_id, voters=voters,
                cluster_id=cluster_id,
            )
            for n in self.specs
        }

    @classmethod
    def from_layout(cls, data_dir: str | Path, heap: str = "384m") -> LocalCluster | None:
        """The cluster recorded in ``data_dir/cluster.json`` (for ``down``/``status``), or None."""
        layout = Path(data_dir) / LAYOUT_FILE
        if not layout.exists():
            return None
        return cls(data_dir, parse_layout(layout.read_text())[1], heap=heap)

    @property
    def bootstrap(self) -> str:
        """Every node's address: a client that starts while one node is down still finds the others."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    @property
    def replication(self) -> tuple[int, int]:
        """(replication factor, min ISR) this cluster gives its topics."""
        return replication_for(len(self.nodes))

    # lifecycle --------------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> float:
        """Launch every node that is not running, then wait until all answer and see each other.

        Returns the seconds spent; 0.0 when every node was already up.  Launching all before waiting
        matters: no node answers before a majority of the controllers has elected a leader.
        """
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        layout = self.data_dir / LAYOUT_FILE
        recorded = parse_layout(layout.read_text())[1] if layout.exists() else None
        if recorded is not None and [n.node_id for n in recorded] != [n.node_id for n in self.specs]:
            raise BrokerError(
                f"{self.data_dir} holds a cluster of {len(recorded)} nodes, not {len(self.specs)}; "
                "stop it and delete its data (livecommerce down --delete-data) to change its size."
            )
        layout.write_text(layout_json(self.cluster_id, self.specs))
        if all(node.pid() is not None for node in self.nodes.values()) and self.answering() == set(self.nodes):
            return 0.0
        launched: list[LocalKafka] = []
        errors: list[BrokerError] = []

        def prepare(node: LocalKafka) -> None:  # in parallel: formatting a node's storage is a JVM start too
            try:
                node.prepare()
            except BrokerError as exc:
                errors.append(exc)

        self._parallel([functools.partial(prepare, node) for node in self.nodes.values()])
        if errors:
            raise errors[0]
        try:
            for node in self.nodes.values():  # from this thread: see LocalKafka.prepare
                if node.launch():
                    launched.append(node)
            self.wait_ready(timeout - (time.monotonic() - began))
        except BrokerError:
            self._parallel([n.stop for n in launched])
            raise
        return time.monotonic() - began

    def wait_ready(self, timeout: float, nodes: Sequence[int] | None = None) -> None:
        """Block until ``nodes`` (default all) answer: each serves metadata that lists itself, i.e. the
        active controller has registered and unfenced it."""
        wanted = set(nodes or self.nodes)
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            dead = [i for i in wanted if self.nodes[i].pid() is None]
            if dead:
                raise BrokerError(f"Kafka node(s) {dead} exited during start-up.\n{self.nodes[dead[0]]._logs()}")
            if self.answering() >= wanted:
                return
            time.sleep(0.25)
        late = sorted(wanted - self.answering())
        raise BrokerError(f"Kafka node(s) {late} did not answer within {timeout:.0f} s.\n{self.nodes[late[0]]._logs()}")

    def answering(self) -> set[int]:
        """Ids of the nodes that serve metadata listing themselves."""
        return {i for i, node in self.nodes.items() if node.pid() is not None and node.is_answering(timeout=2.0)}

    def stop(self, timeout: float = 60.0) -> list[int]:
        """SIGTERM every node at once (one by one, the last ones would wait for a lost quorum), SIGKILL
        after ``timeout``.  Returns the ids of the nodes that were running."""
        running = [i for i, node in self.nodes.items() if node.pid() is not None]
        self._parallel([functools.partial(self.nodes[i].stop, timeout) for i in running])
        return running

    def kill(self, node_id: int) -> bool:
        """SIGKILL one node (a crash, for failure tests and the failover bench)."""
        return self.nodes[node_id].kill()

    def restart(self, node_id: int, timeout: float = 120.0) -> float:
        """Start a stopped or killed node again and wait until it answers; returns the seconds spent."""
        began = time.monotonic()
        node = self.nodes[node_id]
        if port_in_use(node.port) and node.pid() is None:
            raise BrokerError(f"port {node.port} is taken by another process; node {node_id} cannot restart")
        node.launch()
        self.wait_ready(timeout, [node_id])
        return time.monotonic() - began

    def pids(self) -> dict[int, int | None]:
        return {i: node.pid() for i, node in self.nodes.items()}

    def active_controller(self) -> int | None:
        """The KRaft quorum leader, read from the running nodes' ``quorum-state`` files (no client)."""
        states = []
        for node in self.nodes.values():
            path = node.log_dir / "__cluster_metadata-0" / "quorum-state"
            if node.pid() is not None and path.exists():
                states.append(path.read_text())
        return quorum_leader(states)

    @staticmethod
    def _parallel(actions: Sequence[Callable[[], object]]) -> None:
        threads = [threading.Thread(target=action) for action in actions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
