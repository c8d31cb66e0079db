"""Reservation expiry survives a ``kill -9``: holds taken before the kill are released by the restarted
worker's timer (deadlines live in the changelog), exactly once, and the stock returns."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from base.settings import Settings
from schemas import OrderAttempt, OrderResult, SaleConfig, StockUpdate, decode
from tests.fixtures.kafka import consume_all
from tests.fixtures.workers import Worker
from tests.integration.test_flash_sale_race import producer, send

pytestmark = pytest.mark.integration


def test_holds_expire_after_the_worker_was_killed_and_restarted(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    worker = Worker(settings, "solo", tmp_path)
    worker.start()
    try:
        prod = producer(settings)
        now = int(time.time() * 1000)
        send(prod, settings, "sale-config", SaleConfig(
            event_id="open", room_id="r", sku_id="s", action="open", stock=5, price_cents=100,
            starts_at=now - 1000, ends_at=now + 600_000, per_user_limit=1, reservation_ttl_s=8, ts=now,
        ))
        prod.flush(30)
        assert len(consume_all(settings, "stock", expected=1, timeout=90)) == 1  # the worker owns the SKU
        now = int(time.time() * 1000)
        for i in range(3):
            send(prod, settings, "orders", OrderAttempt(order_id=f"o{i}", room_id="r", sku_id="s",
                                                        user_id=f"u{i}", ts=now))
        prod.flush(30)
        accepted = consume_all(settings, "order-results", expected=3, timeout=90)
        assert [msgspec.json.decode(m.value(), type=OrderResult).status for m in accepted] == ["accepted"] * 3
        assert time.time() * 1000 < now + 8000, "too slow to kill before the deadlines"
        worker.kill9()  # the holds are only in the changelog now; nobody runs a timer
        time.sleep(9)  # past the deadlines while no worker is alive
        worker.start()
        results = [decode(OrderResult, m.value()) for m in consume_all(settings, "order-results", expected=6,
                                                                        timeout=90)]
        time.sleep(2)  # a second expiry of the same hold would show up here
        results = [decode(OrderResult, m.value()) for m in consume_all(settings, "order-results")]
    finally:
        worker.stop()
    expired = [r for r in results if r.status == "expired"]
    assert sorted(r.order_id for r in expired) == ["o0", "o1", "o2"]
    assert all(r.ts == r.reserved_until + 1 for r in expired)  # stamped with the deadline, not the restart
    last = decode(StockUpdate, consume_all(settings, "stock")[-1].value())
    assert (last.available, last.reserved, last.sold, last.total) == (5, 0, 0, 5)
