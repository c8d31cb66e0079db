"""Two counters workers on a real broker, one killed with SIGKILL mid-stream and restarted:
the final cumulative counters equal the simulator's ground truth exactly, and every invalid
comment, like and presence message is dead-lettered exactly once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from base.settings import Settings
from schemas import TOPICS, OrderAttempt, OrderResult, Payment, decode
from schemas.events import DeadLetter, RoomCounters
from simulator.config import ScenarioConfig
from simulator.generator import Simulation
from simulator.truth import Outgoing, Truth
from tests.fixtures.kafka import consume_all
from tests.fixtures.workers import Workers

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

PRICE_CENTS = 1999


def fake_flash_sale(items: list[Outgoing]) -> list[Outgoing]:
    """Order results a flash-sale worker could have produced: the first attempt of an order_id is
    accepted, a retry gets that very answer again (as the real job answers re-sends), a payment of an
    accepted order is paid, and a re-sent payment is paid again."""
    accepted: dict[str, OrderAttempt] = {}
    out: list[Outgoing] = []
    for item in items:
        event = item.event
        result: OrderResult | None = None
        if isinstance(event, OrderAttempt):
            first = accepted.setdefault(event.order_id, event)
            result = OrderResult(
                order_id=first.order_id, room_id=first.room_id, sku_id=first.sku_id, user_id=first.user_id,
                status="accepted", quantity=first.quantity, price_cents=PRICE_CENTS, attempt_ts=first.ts,
                ts=first.ts,
            )
        elif isinstance(event, Payment) and event.action == "paid" and event.order_id in accepted:
            order = accepted[event.order_id]
            result = OrderResult(
                order_id=event.order_id, room_id=event.room_id, sku_id=event.sku_id, user_id=event.user_id,
                status="paid", quantity=order.quantity, price_cents=PRICE_CENTS, attempt_ts=order.ts,
                ts=event.ts,
            )
        out.append(item)
        if result is not None:
            out.append(Outgoing(topic="order-results", key=result.room_id.encode(), ts=result.ts,
                                emit_ms=item.emit_ms, seq=item.seq, event=result))
    return out


def produce(settings: Settings, items: list[Outgoing]) -> None:
    """Send items with the project's producer (murmur2 partitioner, as every project producer uses)."""
    from base.kafka import make_producer
    from schemas import encode

    producer = make_producer(settings)
    for item in items:
        value = item.raw if item.event is None else encode(item.event)
        while True:
            try:
                producer.produce(settings.topic(item.topic), value, item.key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def scrape(port: int) -> dict[str, float]:
    """Unlabelled samples of a process's Prometheus /metrics."""
    from urllib.request import urlopen

    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {name: float(value) for name, value in
            (line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#") and "{" not in line)}


@pytest.fixture
def workers(kafka_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(kafka_settings, tmp_path, "counters")
    try:
        yield pool
    finally:
        pool.stop_all()
        with contextlib.suppress(Exception):
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": kafka_settings.kafka_bootstrap})
            admin.delete_topics([kafka_settings.topic("counters-changelog")])


def latest_per_room(settings: Settings) -> dict[str, RoomCounters]:
    """The last committed snapshot of each room (a room's snapshots share one partition, in order)."""
    latest: dict[str, RoomCounters] = {}
    for msg in consume_all(settings, "room-counters", timeout=3):
        snap = decode(RoomCounters, msg.value(), now_ms=2**62)
        latest[snap.room_id] = snap
    return latest


def warehouse_totals_equal_truth(
    settings: Settings, truth: Truth, expected: dict[str, tuple[int, ...]], warehouse: tuple[Client, str]
) -> None:
    """The real sink job drains every topic into embedded ClickHouse; raw rows and the stored
    snapshots (latest cumulative values per room) equal the simulator's truth.

    The sink runs in this process on the session's engine (``warehouse_db``): chdb opens one data
    directory per process, and other tests of this session read the same engine."""
    from streams.runtime.runner import Runner
    from streams.sink.job import RUNNER_CONFIG, BufferedSink, sink_job
    from warehouse.writer import WarehouseWriter as ClickHouseSink

    client, database = warehouse
    store = ClickHouseSink(client, database)
    store.start()
    into = BufferedSink(store)
    sink = Runner(settings, sink_job(into), "it", RUNNER_CONFIG, sink=into)
    thread = threading.Thread(target=sink.run)
    thread.start()
    deadline = time.monotonic() + 180
    caught_up = False
    try:
        while not caught_up and time.monotonic() < deadline:
            time.sleep(0.5)
            caught_up = sink.caught_up
    finally:
        sink.stop_event.set()
        thread.join(60)
    assert caught_up, "the sink did not read every topic to its end"

    stored = {
        row[0]: tuple(row[1:]) for row in client.query(
            "SELECT room_id, max(comments_total), max(likes_total), max(unique_viewers),"
            f" max(order_attempts_total), max(orders_accepted_total) FROM {database}.room_counters FINAL"
            " GROUP BY room_id"
        ).result_rows
    }
    assert stored == expected
    comments = dict(client.query(
        f"SELECT room_id, count() FROM {database}.comments FINAL GROUP BY room_id").result_rows)
    assert comments == {room: t.comments for room, t in truth.rooms.items()}
    likes = dict(client.query(
        f"SELECT room_id, sum(count) FROM {database}.likes FINAL GROUP BY room_id").result_rows)
    assert likes == {room: t.likes for room, t in truth.rooms.items()}


def test_sigkill_and_restart_leave_cumulative_counters_exact(
    kafka_settings: Settings, workers: Workers, warehouse_db: tuple[Client, str]
) -> None:
    sim = Simulation(ScenarioConfig(
        seed=11, rooms=6, duration_s=240, peak_viewers=600, invalid_share=0.02, jitter_ms=1500,
        start_ts=int(time.time() * 1000) - 3_600_000,
    ))
    items = fake_flash_sale(list(sim))
    truth = sim.truth
    half = len(items) // 2

    workers.start("1")
    workers.start("2")
    workers.wait_assigned("1", "2")
    produce(kafka_settings, items[:half])
    rest = threading.Thread(target=produce, args=(kafka_settings, items[half:]))
    rest.start()
    time.sleep(0.5)
    workers.kill("2")  # SIGKILL while the second half is flowing in
    rest.join()
    time.sleep(2)
    workers.start("2")

    def totals(snap: RoomCounters) -> tuple[int, ...]:
        return (snap.comments_total, snap.likes_total, snap.unique_viewers, snap.order_attempts_total,
                snap.orders_accepted_total)

    expected = {
        # retries included: each order counts once as an attempt and once as accepted
        room: (t.comments, t.likes, t.unique_viewers, t.distinct_order_ids, t.distinct_order_ids)
        for room, t in truth.rooms.items()
    }
    deadline = time.monotonic() + 120  # a generous bound for a loaded machine; normally a few seconds
    latest: dict[str, RoomCounters] = {}
    while time.monotonic() < deadline:
        latest = latest_per_room(kafka_settings)
        if {r: totals(s) for r, s in latest.items()} == expected:
            break
        time.sleep(2)
    assert set(latest) == set(truth.rooms), workers.logs()
    got = {r: totals(s) for r, s in latest.items()}
    assert got == expected, f"got {got}\nexpected {expected}\n{workers.logs()}"

    assert sum(t.order_attempts for t in truth.rooms.values()) > sum(  # the stream has retries
        t.distinct_order_ids for t in truth.rooms.values())
    for room_id, t in truth.rooms.items():
        snap = latest[room_id]
        results = [i.event for i in items if isinstance(i.event, OrderResult) and i.event.room_id == room_id]
        accepted = [r for r in results if r.status == "accepted"]
        paid = [r for r in results if r.status == "paid"]
        assert snap.comments_total == t.comments, workers.logs()
        assert snap.likes_total == t.likes
        assert snap.unique_viewers == t.unique_viewers
        assert snap.order_attempts_total == t.distinct_order_ids  # retried orders count once
        assert snap.orders_accepted_total == t.distinct_order_ids
        firsts = {(r.sku_id, r.user_id, r.order_id): r for r in accepted}
        paid = list({(r.sku_id, r.user_id, r.order_id): r for r in paid}.values())
        accepted = list(firsts.values())
        assert snap.units_total == sum(r.quantity for r in accepted)
        assert snap.gmv_reserved_cents_total == PRICE_CENTS * snap.units_total
        assert snap.gmv_paid_cents_total == sum(r.quantity * r.price_cents for r in paid)
        assert snap.unique_buyers == len({r.user_id for r in accepted})

    metrics = scrape(workers.port("1"))  # the surviving worker's statistics reach Prometheus
    assert metrics["lc_counters_events_total"] > 0 and metrics["lc_counters_outputs_total"] > 0
    # every room in one partition on every topic: the gate refused nothing as misrouted
    assert not any("Misrouted" in name or "KeyMismatch" in name for name in metrics)
    warehouse_totals_equal_truth(kafka_settings, truth, expected, warehouse_db)

    dead = [msgspec.json.decode(m.value(), type=DeadLetter) for m in consume_all(kafka_settings, "dead-letters")]
    for name in ("comments", "likes", "presence"):
        mine = [d for d in dead if d.source_topic == kafka_settings.topic(name)]
        assert len(mine) == truth.topics[name].invalid
        assert len({(d.partition, d.offset) for d in mine}) == len(mine)  # each exactly once
        assert all(d.reason for d in mine)
    assert TOPICS["dead-letters"].key_field == "source_topic"
