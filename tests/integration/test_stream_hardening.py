"""Issue 14's stream attacks, kept in their shape, on a real broker and real worker processes.

- one order stamped far in the future (and one a little ahead) on SKU A must not end SKU B's holds or
  sale on the same partition;
- payments stamped before their holds' deadline, reaching Kafka while the worker is dead, must pay
  when the worker comes back long after the deadline (no timer tick on a restarted, unread partition);
- room-keyed input on the wrong partition, under a key that is not its room, or with no key, is
  dead-lettered and never counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from base.settings import Settings
from schemas import TOPICS, Comment, DeadLetter, OrderAttempt, OrderResult, Payment, RoomCounters, SaleConfig, decode
from schemas import encode as encode_event
from streams.partitioning import default_partition
from tests.fixtures.kafka import consume_all
from tests.fixtures.workers import Worker
from tests.integration.test_flash_sale_race import producer, send

pytestmark = pytest.mark.integration


def same_partition_skus(partitions: int) -> tuple[str, str]:
    home = default_partition(b"sku-a", partitions)
    other = next(f"sku-b{i}" for i in range(1000) if default_partition(f"sku-b{i}".encode(), partitions) == home)
    return "sku-a", other


def open_sale(prod: object, settings: Settings, sku: str, now: int, ttl_s: int, ends_in_ms: int = 600_000) -> None:
    send(prod, settings, "sale-config", SaleConfig(
        event_id=f"open-{sku}", room_id="r", sku_id=sku, action="open", stock=10, price_cents=100,
        starts_at=now - 1000, ends_at=now + ends_in_ms, per_user_limit=1, reservation_ttl_s=ttl_s, ts=now,
    ))


def results(settings: Settings) -> list[OrderResult]:
    return [decode(OrderResult, m.value(), now_ms=2**62) for m in consume_all(settings, "order-results")]


def test_a_future_stamp_on_one_sku_moves_no_other_skus_time(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    sku_a, sku_b = same_partition_skus(settings.partitions)
    worker = Worker(settings, "future", tmp_path)
    worker.start()
    try:
        prod = producer(settings)
        now = int(time.time() * 1000)
        open_sale(prod, settings, sku_a, now, ttl_s=60)
        open_sale(prod, settings, sku_b, now, ttl_s=60, ends_in_ms=120_000)
        send(prod, settings, "orders", OrderAttempt(order_id="victim", room_id="r", sku_id=sku_b, user_id="v",
                                                    ts=now))
        prod.flush(30)
        assert len(consume_all(settings, "order-results", expected=1, timeout=90)) == 1
        later = int(time.time() * 1000)
        # the attack: SKU A stamped 295 s ahead (refused outright), then as far ahead as allowed
        send(prod, settings, "orders", OrderAttempt(order_id="far", room_id="r", sku_id=sku_a, user_id="x",
                                                    ts=later + 295_000))
        send(prod, settings, "orders", OrderAttempt(order_id="near", room_id="r", sku_id=sku_a, user_id="y",
                                                    ts=later + settings.max_future_skew_ms - 100))
        prod.flush(30)
        assert len(consume_all(settings, "order-results", expected=2, timeout=90)) == 2
        time.sleep(2)
        # SKU B: its hold pays 2 s later, and a buyer 3 s into its sale is not told it ended
        send(prod, settings, "payments", Payment(event_id="pay-victim", order_id="victim", room_id="r",
                                                 sku_id=sku_b, user_id="v", action="paid",
                                                 ts=int(time.time() * 1000)))
        send(prod, settings, "orders", OrderAttempt(order_id="next", room_id="r", sku_id=sku_b, user_id="w",
                                                    ts=int(time.time() * 1000)))
        prod.flush(30)
        consume_all(settings, "order-results", expected=4, timeout=90)
        time.sleep(1)
        answers = results(settings)
        dead = [decode(DeadLetter, m.value(), now_ms=2**62) for m in consume_all(settings, "dead-letters")]
    finally:
        worker.stop()
    by_order = {(r.order_id, r.status) for r in answers}
    assert ("victim", "paid") in by_order, answers
    assert ("next", "accepted") in by_order, answers
    assert ("near", "accepted") in by_order  # the near-future stamp is allowed, for its own SKU
    assert not any(r.order_id == "far" for r in answers)  # ... the far one never decided
    assert any("in the future" in d.reason and d.source_topic == settings.topic("orders") for d in dead)


def test_payments_stamped_in_time_pay_after_the_worker_was_down_past_the_deadline(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    worker = Worker(settings, "grace", tmp_path)
    worker.start()
    try:
        prod = producer(settings)
        now = int(time.time() * 1000)
        open_sale(prod, settings, "sku-grace", now, ttl_s=3)
        for i in range(5):
            send(prod, settings, "orders", OrderAttempt(order_id=f"o{i}", room_id="r", sku_id="sku-grace",
                                                        user_id=f"u{i}", ts=now))
        prod.flush(30)
        accepted = [decode(OrderResult, m.value()) for m in consume_all(settings, "order-results", expected=5,
                                                                          timeout=90)]
        assert {r.status for r in accepted} == {"accepted"}
        deadline = min(r.reserved_until or 0 for r in accepted)
        worker.kill9()  # the worker is behind by everything that follows
        while time.time() * 1000 < deadline - 800:
            time.sleep(0.05)
        for i in range(5):  # stamped before the deadline; they reach Kafka within the grace
            send(prod, settings, "payments", Payment(event_id=f"p{i}", order_id=f"o{i}", room_id="r",
                                                     sku_id="sku-grace", user_id=f"u{i}", action="paid",
                                                     ts=int(time.time() * 1000)))
        prod.flush(30)
        assert time.time() * 1000 < deadline + settings.payment_grace_ms, "too slow to produce within the grace"
        time.sleep((deadline + settings.payment_grace_ms + 3000) / 1000 - time.time())  # long past the grace
        worker.start()  # a fresh timer, a restored state, a backlog of payments
        consume_all(settings, "order-results", expected=10, timeout=90)
        time.sleep(2)  # an expiry after the payment would show up here
        answers = results(settings)
    finally:
        worker.stop()
    final = {r.order_id: r.status for r in answers if r.status in ("paid", "expired", "payment_refused")}
    assert final == {f"o{i}": "paid" for i in range(5)}, answers


def test_misrouted_and_mis_keyed_room_events_are_dead_lettered_not_counted(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from base.kafka import make_producer
    from base.settings import REPO_ROOT
    from tests.fixtures.kafka import free_ports

    settings = kafka_settings
    env = {**__import__("os").environ, **settings.as_env(), "LC_LOG_FORMAT": "json"}
    log = (tmp_path / "counters.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "livecommerce.cli", "worker", "counters", "--worker-id", "m",
                             "--web-port", str(free_ports(1)[0])], env=env, cwd=REPO_ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        prod = make_producer(settings)
        now = int(time.time() * 1000)
        home = default_partition(b"RB", settings.partitions)
        wrong = (home + 1) % settings.partitions
        topic = settings.topic("comments")

        def comment(i: int) -> Comment:
            return Comment(event_id=f"c{i}", room_id="RB", user_id="u", text="hi", ts=now)

        for i in range(5):  # on time, at home: counted
            prod.produce(topic, encode_event(comment(i)), TOPICS["comments"].key_of(comment(i)))
        for i in range(5, 8):  # the attack: wrong partition, a key that is another room, no key
            prod.produce(topic, encode_event(comment(i)), b"RB", partition=wrong)
            prod.produce(topic, encode_event(comment(i + 10)), b"RA", partition=home)
            prod.produce(topic, encode_event(comment(i + 20)), None, partition=home)
        assert prod.flush(30) == 0
        deadline = time.monotonic() + 90
        latest = None
        while time.monotonic() < deadline:
            snaps = [decode(RoomCounters, m.value(), now_ms=2**62) for m in consume_all(settings, "room-counters")]
            mine = [s for s in snaps if s.room_id == "RB"]
            latest = mine[-1] if mine else None
            dead = [decode(DeadLetter, m.value(), now_ms=2**62) for m in consume_all(settings, "dead-letters")]
            if latest is not None and len(dead) >= 9:
                break
            time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert latest is not None and latest.comments_total == 5
    assert sorted(d.error for d in dead) == ["KeyMismatch"] * 6 + ["Misrouted"] * 3
