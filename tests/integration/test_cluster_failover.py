"""The three-node cluster keeps every acknowledged record when a partition's leader dies by SIGKILL.

An idempotent ``acks=all`` producer (the project's one producer factory) keeps writing numbered
records to one hot key while the node leading that key's partition is killed.  Read back with
``read_committed``, every id the producer saw acknowledged is there exactly once (nothing lost, nothing
doubled), writes went on after the kill (min ISR 2 of the two survivors), and the killed node, started
again, rejoins every partition's in-sync replicas.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from base.cluster import LocalCluster
from base.kafka import make_producer
from base.settings import Settings
from tests.fixtures.kafka import consume_all

pytestmark = pytest.mark.integration

HOT_KEY = b"hot-sku"


class Acks:
    """Ids the cluster acknowledged (delivery report without error), and the partition they went to."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.partition: int | None = None

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        self.ids.append(int(msg.value()))
        self.partition = msg.partition()


def _partition_metadata(settings: Settings, topic: str, partition: int) -> Any:
    from base.kafka import make_admin

    return make_admin(settings).list_topics(topic, timeout=30).topics[topic].partitions[partition]


def _produce_until(producer: Any, topic: str, acks: Acks, next_id: int, acked_target: int, limit_s: float) -> int:
    """Produce numbered records until ``acked_target`` ids are acknowledged (or ``limit_s`` passes)."""
    deadline = time.monotonic() + limit_s
    while len(acks.ids) < acked_target and time.monotonic() < deadline:
        try:
            producer.produce(topic, value=str(next_id).encode(), key=HOT_KEY, on_delivery=acks)
            next_id += 1
        except BufferError:
            pass
        producer.poll(0.001)
    return next_id


def _wait_in_sync(settings: Settings, topic: str, node_id: int, partitions: int, limit_s: float) -> set[int]:
    """Partitions of ``topic`` whose in-sync replicas include ``node_id``, polled until all do or time runs out."""
    from base.kafka import make_admin

    admin = make_admin(settings)
    deadline = time.monotonic() + limit_s
    in_sync: set[int] = set()
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=30).topics[topic]
        in_sync = {p for p, pm in meta.partitions.items() if node_id in pm.isrs}
        if len(in_sync) == partitions:
            break
        time.sleep(0.5)
    return in_sync


def test_killing_a_partition_leader_loses_and_doubles_no_acknowledged_record_and_the_node_rejoins(
    kafka_cluster: LocalCluster, cluster_settings: Settings
) -> None:
    topic = cluster_settings.topic("orders")
    producer = make_producer(cluster_settings, {"linger.ms": 2})
    acks = Acks()

    next_id = _produce_until(producer, topic, acks, 0, acked_target=3_000, limit_s=120)
    assert acks.partition is not None, f"nothing acknowledged before the kill: {acks.errors[:3]}"
    before = _partition_metadata(cluster_settings, topic, acks.partition)
    assert sorted(before.replicas) == sorted(kafka_cluster.nodes) and len(before.isrs) == 3
    leader = before.leader
    acked_at_kill = len(acks.ids)

    assert kafka_cluster.kill(leader)
    next_id = _produce_until(producer, topic, acks, next_id, acked_target=acked_at_kill + 3_000, limit_s=180)
    assert producer.flush(120) == 0
    after = _partition_metadata(cluster_settings, topic, acks.partition)

    assert after.leader not in (leader, -1), "a surviving in-sync replica should lead the partition"
    assert len(acks.ids) >= acked_at_kill + 3_000, "writes should go on with two of three replicas in sync"
    consumed = Counter(int(m.value() or b"-1") for m in consume_all(cluster_settings, "orders", expected=len(acks.ids)))
    acked = Counter(acks.ids)
    assert max(acked.values()) == 1
    assert [i for i in acked if consumed[i] == 0] == [], "acknowledged records lost"
    assert {i: n for i, n in consumed.items() if n > 1} == {}, "records doubled"
    assert set(consumed) <= set(range(next_id)), "records that were never produced"

    kafka_cluster.restart(leader)
    assert _wait_in_sync(cluster_settings, topic, leader, cluster_settings.partitions, limit_s=180) == set(
        range(cluster_settings.partitions)
    ), "the restarted node should rejoin every partition's in-sync replicas"
    assert sorted(kafka_cluster.answering()) == sorted(kafka_cluster.nodes)
    print(f"killed leader {leader} of partition {acks.partition}; new leader {after.leader}; "
          f"{acked_at_kill} acknowledged before the kill, {len(acks.ids) - acked_at_kill} after; "
          f"{len(consumed)} read back, 0 lost, 0 doubled; node {leader} back in sync")
