"""A SKU has exactly one owner: a flash-sale message that its producer put on another partition than
Kafka's default partitioner gives its sku_id is dead-lettered ("Misrouted"), never decided by a second
copy of the SKU's stock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from base.settings import Settings
from schemas import TOPICS, DeadLetter, OrderAttempt, OrderResult, SaleConfig, decode, encode
from streams.partitioning import default_partition
from tests.fixtures.kafka import consume_all
from tests.fixtures.workers import Worker
from tests.integration.test_flash_sale_race import producer, send

pytestmark = pytest.mark.integration


def test_an_order_on_the_wrong_partition_is_dead_lettered_not_decided(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    assert settings.partitions > 1
    worker = Worker(settings, "route", tmp_path)
    worker.start()
    try:
        prod = producer(settings)
        now = int(time.time() * 1000)
        send(prod, settings, "sale-config", SaleConfig(
            event_id="open-route", room_id="r", sku_id="sku-route", action="open", stock=3, price_cents=100,
            starts_at=now - 1000, ends_at=now + 600_000, per_user_limit=1, ts=now,
        ))
        prod.flush(30)
        assert consume_all(settings, "stock", expected=1, timeout=90)  # the worker owns the SKU
        home = default_partition(b"sku-route", settings.partitions)
        wrong = (home + 1) % settings.partitions
        astray = OrderAttempt(order_id="o-astray", room_id="r", sku_id="sku-route", user_id="u1", ts=now)
        prod.produce(settings.topic("orders"), encode(astray), TOPICS["orders"].key_of(astray), partition=wrong)
        send(prod, settings, "orders", OrderAttempt(order_id="o-home", room_id="r", sku_id="sku-route",
                                                    user_id="u2", ts=now))
        prod.flush(30)
        results = [decode(OrderResult, m.value()) for m in consume_all(settings, "order-results", expected=1,
                                                                        timeout=90)]
        dead = [decode(DeadLetter, m.value(), now_ms=2**62) for m in consume_all(settings, "dead-letters",
                                                                                   expected=1, timeout=90)]
        time.sleep(1)  # an answer to the astray order would show up here
        results = [decode(OrderResult, m.value()) for m in consume_all(settings, "order-results")]
    finally:
        worker.stop()
    assert [(r.order_id, r.status) for r in results] == [("o-home", "accepted")]
    misrouted = [d for d in dead if d.error == "Misrouted"]
    assert len(misrouted) == 1
    assert misrouted[0].partition == wrong and decode(OrderAttempt, misrouted[0].payload) == astray
    assert f"belongs to partition {home}" in misrouted[0].reason
