"""A flash sale on the three-broker cluster survives a broker's death, with nobody restarting anything.

Thousands of buyers race for 500 units while (1) the broker leading the hot SKU's partition, or (2) the
group coordinator's broker together with the flash-sale worker, is killed with SIGKILL mid-sale.  The
worker carries on by itself once a new leader is elected (in case 2 the worker is started again, as its
supervisor would).  Every order is answered exactly once, with one answer per order, and nothing is
oversold."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from base.cluster import LocalCluster
from base.settings import Settings
from schemas import OrderAttempt, OrderResult, SaleConfig
from tests.fixtures.kafka import consume_all
from tests.integration.test_flash_sale_race import ResultReader, Worker, producer, send

pytestmark = pytest.mark.integration

BUYERS, STOCK, SKU, ROOM = 4_000, 500, "cluster-sku", "cluster-room"


def _leader_of(settings: Settings, topic: str, partition: int) -> int:
    from base.kafka import make_admin

    return int(make_admin(settings).list_topics(topic, timeout=30).topics[topic].partitions[partition].leader)


def _group_coordinator(settings: Settings, group: str) -> int:
    from base.kafka import make_admin

    admin = make_admin(settings)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return int(admin.describe_consumer_groups([group], request_timeout=10)[group].result().coordinator.id)
        except Exception:  # the group may not exist for a moment
            time.sleep(0.5)
    raise AssertionError(f"no coordinator for {group}")


def _race(
    settings: Settings, cluster: LocalCluster, worker: Worker, kill: str
) -> tuple[list[OrderResult], Counter[str]]:
    reader = ResultReader(settings)
    reader.start()
    worker.start()
    prod = producer(settings)
    now = int(time.time() * 1000)
    where: list[int] = []
    send(prod, settings, "sale-config", SaleConfig(
        event_id="open", room_id=ROOM, sku_id=SKU, action="open", stock=STOCK, price_cents=100,
        starts_at=now - 1000, ends_at=now + 3_600_000, per_user_limit=1, reservation_ttl_s=900, ts=now,
    ), where)
    prod.flush(60)
    # the worker owns the SKU and opened the sale (a backlog read topic by topic could see orders first)
    assert len(consume_all(settings, "stock", expected=1, timeout=120)) == 1
    sent: Counter[str] = Counter()
    killed = False
    for i in range(BUYERS):
        order = OrderAttempt(order_id=f"o{i}", room_id=ROOM, sku_id=SKU, user_id=f"u{i}", ts=int(time.time() * 1000))
        send(prod, settings, "orders", order)
        sent[order.order_id] += 1
        if i % 100 == 99:
            prod.flush(120)
            time.sleep(0.02)
        if i == BUYERS // 4:  # a quarter sent: wait for the sale to be under way, then kill mid-sale
            deadline = time.monotonic() + 120
            while len(reader.results) < 100 and time.monotonic() < deadline:
                time.sleep(0.1)
        if not killed and len(reader.results) >= 100:
            if kill == "leader":
                assert cluster.kill(_leader_of(settings, settings.topic("orders"), where[0]))
            else:
                node = _group_coordinator(settings, settings.topic("flash-sale"))
                worker.kill9()
                assert cluster.kill(node)
                worker.start()  # what a supervisor does; the broker stays dead
            killed = True
    prod.flush(180)
    assert killed, "the sale ended before the kill"
    reader.wait_for(sum(sent.values()), 300, "order answers", [worker])
    time.sleep(2)  # a duplicated answer would show up here
    reader.halt.set()
    return list(reader.results), sent


@pytest.mark.parametrize("kill", ["leader", "worker_and_group_coordinator"])
def test_a_broker_killed_mid_sale_loses_no_answer_and_oversells_nothing(
    cluster_settings: Settings, kafka_cluster: LocalCluster, tmp_path: Path, kill: str
) -> None:
    worker = Worker(cluster_settings, "cl", tmp_path)
    try:
        results, sent = _race(cluster_settings, kafka_cluster, worker, kill)
    finally:
        worker.stop()
    decisions = [r for r in results if r.status in ("accepted", "rejected")]
    assert Counter(r.order_id for r in decisions) == sent  # every order answered once: none lost, none doubled
    accepted = [r for r in decisions if r.status == "accepted"]
    assert sum(r.quantity for r in accepted) == STOCK  # all sold, none oversold
    assert {r.reason for r in decisions if r.status == "rejected"} == {"sold_out"}
