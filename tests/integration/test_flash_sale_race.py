"""20,000 buyers race for 500 units of one SKU on a real broker, with two flash-sale worker processes;
the owner of the SKU's partition is killed with SIGKILL mid-sale and restarted.

Exact checks: 500 units accepted (none oversold), every attempt answered exactly once (re-sent
order_ids get the same answer again), every payment answered once, the answers equal a replay of the
input log through the pure core, and the stock never went negative or out of balance.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from base.settings import REPO_ROOT, Settings
from schemas import TOPICS, OrderAttempt, OrderResult, Payment, SaleConfig, StockUpdate, decode, encode
from streams.flash_sale.inventory import Inventory, check_invariant
from tests.fixtures.kafka import consume_all, free_ports
from tests.fixtures.workers import Worker

pytestmark = pytest.mark.integration

BUYERS = 20_000
STOCK = 500
SKU, ROOM = "sku-hot-1", "room-1"
RESENDS = 1_000
DOUBLE_CLICKS = 200
GARBAGE = 50


class ResultReader(threading.Thread):
    """Reads order-results (read_committed) from the beginning while the sale runs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.results: list[OrderResult] = []
        self.halt = threading.Event()

    def run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        from base.kafka import make_consumer

        topic = self.settings.topic("order-results")
        consumer = make_consumer(self.settings, "race-reader", {"isolation.level": "read_committed"})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(self.settings.partitions)])
        decoder = msgspec.json.Decoder(OrderResult)
        try:
            while not self.halt.is_set():
                for msg in consumer.consume(1000, 0.1):
                    if msg.error() is None:
                        self.results.append(decoder.decode(msg.value()))
        finally:
            consumer.close()

    def wait_for(self, count: int, timeout: float, what: str, workers: list[Worker]) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(self.results) < count:
            pytest.fail(f"{what}: {len(self.results)} of {count} answers\n" + "\n".join(w.logs() for w in workers))


def producer(settings: Settings) -> Any:
    from base.kafka import make_producer

    return make_producer(settings)


def send(prod: Any, settings: Settings, topic: str, event: Any, sink: list[int] | None = None) -> None:
    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        if sink is not None:
            sink.append(msg.partition())

    prod.produce(settings.topic(topic), encode(event), TOPICS[topic].key_of(event), on_delivery=delivered)


def owner_of(settings: Settings, partition: int, members: int = 2, timeout: float = 60) -> str:
    """group.instance.id of the member holding orders[partition], once ``members`` members share the work."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group, topic = settings.topic("flash-sale"), settings.topic("orders")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
        except KafkaException:  # the group coordinator of a fresh broker may still be loading
            time.sleep(0.5)
            continue
        assigned = {m.group_instance_id: {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic}
                    for m in desc.members}
        if len(assigned) == members and all(assigned.values()):
            for instance, parts in assigned.items():
                if partition in parts:
                    return str(instance)
        time.sleep(0.2)
    raise AssertionError(f"group {group} did not settle with {members} members")


@pytest.fixture
def workers(kafka_settings: Settings, tmp_path: Path) -> Iterator[dict[str, Worker]]:
    pool = {wid: Worker(kafka_settings, wid, tmp_path) for wid in ("a", "b")}
    try:
        yield pool
    finally:
        for w in pool.values():
            w.stop()


def test_twenty_thousand_buyers_five_hundred_units_with_a_kill9(
    kafka_settings: Settings, workers: dict[str, Worker], tmp_path: Path
) -> None:
    settings, rng = kafka_settings, random.Random(4)
    reader = ResultReader(settings)
    reader.start()
    for w in workers.values():
        w.start()
    prod = producer(settings)
    now = int(time.time() * 1000)
    partition_sink: list[int] = []
    send(prod, settings, "sale-config", SaleConfig(
        event_id="cfg-1", room_id=ROOM, sku_id=SKU, action="open", stock=STOCK, price_cents=9_900,
        starts_at=now - 1_000, ends_at=now + 3_600_000, per_user_limit=2, reservation_ttl_s=900, ts=now,
    ), partition_sink)
    prod.flush(30)
    sku_partition = partition_sink[0]
    owner = owner_of(settings, sku_partition)
    victim = workers[owner.rsplit("-", 1)[1]]
    assert len(consume_all(settings, "stock", expected=1, timeout=60)) == 1  # the owner opened the sale

    # ---- the race: paced so that the kill lands mid-sale (before the 500 units are gone)
    sent: list[OrderAttempt] = []
    attempts_per_order: Counter[str] = Counter()
    killed_at = None
    for i in range(BUYERS):
        order = OrderAttempt(order_id=f"o-{i}", room_id=ROOM, sku_id=SKU, user_id=f"u-{i}",
                             quantity=2 if i % 10 == 0 else 1, ts=int(time.time() * 1000))
        batch = [order]
        if i < DOUBLE_CLICKS * 50 and i % 50 == 7:  # a double click: a second order_id right away
            batch.append(msgspec.structs.replace(order, order_id=f"o-{i}-dbl"))
        if i % (BUYERS // RESENDS) == 3 and sent:  # a client retry: the very same attempt again
            batch.append(rng.choice(sent))
        if i % (BUYERS // GARBAGE) == 11:
            prod.produce(settings.topic("orders"), b'{"type":"order","order_id":"bad"', SKU.encode())
        for o in batch:
            send(prod, settings, "orders", o)
            attempts_per_order[o.order_id] += 1
            sent.append(o)
        if i % 200 == 199 or (i < 3000 and i % 20 == 19):  # slower at first: the kill must come mid-sale
            prod.flush(30)
            time.sleep(0.02)
        if killed_at is None and len(reader.results) >= 100:
            victim.kill9()
            killed_at = len(reader.results)
            held = {r.order_id: r.quantity for r in list(reader.results) if r.status == "accepted"}
            units_at_kill = sum(held.values())
            victim.start()  # same worker id: same static member, same transactional ids
    prod.flush(30)
    assert killed_at is not None, "the sale ended before the kill"
    print(f"killed {victim.worker_id} after {killed_at} answers, {units_at_kill} units held")
    total_attempts = sum(attempts_per_order.values())
    reader.wait_for(total_attempts + 0, 240, "order answers", list(workers.values()))

    decisions = list(reader.results)
    accepted = {r.order_id: r for r in decisions if r.status == "accepted"}
    assert sum(r.quantity for r in accepted.values()) == STOCK
    answers = Counter(r.order_id for r in decisions)
    assert answers == attempts_per_order  # every attempt answered once: none lost, none doubled
    first: dict[str, OrderResult] = {}
    for r in decisions:
        assert first.setdefault(r.order_id, r) == r  # a re-sent order_id got the very same answer
    reasons = Counter(r.reason for r in decisions if r.status == "rejected")
    assert reasons["sold_out"] > 0 and reasons["duplicate"] > 0

    # ---- payments: most holds paid, some cancelled, some re-sent, a few for unknown orders
    payments: list[Payment] = []
    for n, r in enumerate(sorted(accepted.values(), key=lambda r: r.order_id)):
        action = "cancelled" if n % 5 == 0 else "paid"
        payments.append(Payment(event_id=f"pay-{r.order_id}", order_id=r.order_id, room_id=ROOM, sku_id=SKU,
                                user_id=r.user_id, action=action, ts=int(time.time() * 1000)))
    payments += payments[:20]
    payments += [Payment(event_id=f"pay-x{i}", order_id=f"nope-{i}", room_id=ROOM, sku_id=SKU, user_id="u-1",
                         action="paid", ts=int(time.time() * 1000)) for i in range(10)]
    for p in payments:
        send(prod, settings, "payments", p)
    prod.flush(30)
    reader.wait_for(total_attempts + len(payments), 120, "payment answers", list(workers.values()))
    time.sleep(1.0)  # anything beyond the expected count would be a doubled answer
    reader.halt.set()
    reader.join(10)
    results = list(reader.results)
    assert len(results) == total_attempts + len(payments)
    paid = [r for r in results if r.status == "paid"]
    cancelled = [r for r in results if r.status == "cancelled"]
    settled = Counter(r.order_id for r in paid + cancelled)
    assert set(settled) == set(accepted)  # every hold settled, by its payment or its cancellation ...
    assert settled == Counter(p.order_id for p in payments if p.order_id in accepted)  # ... answered per event
    assert Counter(r.reason for r in results if r.status == "payment_refused") == {"unknown_order": 10}

    # ---- stock never negative, always balanced; the last update says what was sold
    stock = [decode(StockUpdate, m.value()) for m in consume_all(settings, "stock")]
    for s in stock:
        assert s.available >= 0 and s.available + s.reserved + s.sold == s.total == STOCK
    assert stock[-1].sold == sum(r.quantity for r in {r.order_id: r for r in paid}.values())

    # ---- invalid messages were dead-lettered with a reason, not dropped
    dead = consume_all(settings, "dead-letters", expected=GARBAGE)
    assert len(dead) == GARBAGE

    # ---- a replay of the input log through the pure core gives the very same answers
    assert results == replay(settings, sku_partition)

    # ---- the ClickHouse sink stores every answer once: exactly the accepted, paid, cancelled orders
    rows = warehouse_rows(settings, tmp_path)
    for status in ("accepted", "paid", "cancelled", "rejected"):
        expected = {r.order_id for r in results if r.status == status}
        assert rows.get(status) == (len(expected), expected), status


def warehouse_rows(settings: Settings, tmp_path: Path, sku: str = SKU) -> dict[str, tuple[int, set[str]]]:
    """Run the real sink (its own chdb directory) until it committed every order result, stop it,
    and read back ``status -> (rows, order_ids)`` of the flash SKU under FINAL."""
    from confluent_kafka import Consumer, TopicPartition

    from tests.fixtures.clickhouse import query_in_subprocess

    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    env = {**os.environ, **settings.as_env(), "LC_CLICKHOUSE_DSN": dsn, "LC_LOG_FORMAT": "json"}
    with open(tmp_path / "sink.log", "wb") as log:
        sink = subprocess.Popen([sys.executable, "-m", "livecommerce.cli", "worker", "sink", "--worker-id", "fs",
                                 "--web-port", str(free_ports(1)[0])], env=env, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.topic("sink")})
    parts = [TopicPartition(settings.topic("order-results"), p) for p in range(settings.partitions)]
    try:
        deadline = time.monotonic() + 180
        while True:
            assert sink.poll() is None, (tmp_path / "sink.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "sink did not catch up\n" + (tmp_path / "sink.log").read_text()[-3000:]
            committed = consumer.committed(parts, timeout=30)
            highs = [consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in parts]
            # every transaction ends with a commit marker: the last data record is before high - 1
            if all(h == 0 or tp.offset >= h - 1 for tp, h in zip(committed, highs, strict=True)):
                break
            time.sleep(0.5)
    finally:
        consumer.close()
        sink.terminate()
        sink.wait(60)
    (rows,) = query_in_subprocess(dsn, [
        f"SELECT status, count(), groupArray(order_id) FROM livecommerce.order_results FINAL "
        f"WHERE sku_id = '{sku}' GROUP BY status"
    ])
    return {status: (count, set(ids)) for status, count, ids in rows}


def replay(settings: Settings, partition: int) -> list[OrderResult]:
    """Decide the committed input log again: sale config, then the orders, then the payments (the
    order the test produced them in, each phase waiting for the previous one's answers)."""
    inv = Inventory()
    out: list[OrderResult] = []
    for topic, event_type in (("sale-config", SaleConfig), ("orders", OrderAttempt), ("payments", Payment)):
        for msg in consume_all(settings, topic):
            if msg.partition() != partition:
                continue
            try:
                event = decode(event_type, msg.value(), now_ms=2**62)
            except ValueError:
                continue
            inv.handle(event)  # type: ignore[arg-type]
            check_invariant(inv)
        out += inv.take_outputs()[0].results
    return out
