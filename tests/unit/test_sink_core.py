"""The sink's pure core: when a batch is due, and that every buffered event is written once."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import OrderAttempt, OrderResult, SaleConfig
from streams.flash_sale.inventory import Inventory
from streams.sink.core import FlushPolicy, SinkBuffer, order_of_result

T0 = 1_760_000_000_000

# (table; ms since the previous message)
message = st.tuples(st.sampled_from(["comments", "likes", "alerts"]), st.integers(0, 400))


@given(st.lists(message, max_size=60), st.integers(1, 30), st.integers(1, 30), st.integers(0, 2000))
def test_batches_hold_every_event_once_within_the_limits(
    messages: list[tuple[str, int]], max_rows: int, max_table_rows: int, max_age: int
) -> None:
    buffer = SinkBuffer(FlushPolicy(max_rows=max_rows, max_table_rows=max_table_rows, max_age_ms=max_age))
    written: list[int] = []
    now = 0
    for i, (table, elapsed) in enumerate(messages):
        now += elapsed
        buffer.add(table, i, now)
        if not buffer.due(now):
            assert buffer.rows < max_rows
            continue
        tables = buffer.drain()
        assert sum(map(len, tables.values())) <= max_rows
        assert all(len(rows) <= max_table_rows for rows in tables.values())
        written += [e for rows in tables.values() for e in rows]
    written += [e for rows in buffer.drain().values() for e in rows]
    assert sorted(written) == list(range(len(messages)))


def test_due_by_age_by_one_table_and_by_total() -> None:
    buffer = SinkBuffer(FlushPolicy(max_rows=3, max_table_rows=2, max_age_ms=100))
    assert not buffer.due(10**9) and buffer.ms_until_due(0) is None
    buffer.add("likes", "a", now_ms=1000)
    assert not buffer.due(1099) and buffer.ms_until_due(1050) == 50
    assert buffer.due(1100)
    buffer.add("likes", "b", now_ms=1001)
    assert buffer.due(1001)  # two in one table
    buffer.drain()
    for i, table in enumerate(["a", "b", "c"]):
        buffer.add(table, i, now_ms=2000)
    assert buffer.due(2000)  # three in all


def test_discard_drops_rows() -> None:
    buffer = SinkBuffer()
    buffer.add("likes", "x", now_ms=0)
    assert buffer.discard() == 1
    assert buffer.empty and buffer.drain() == {}


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        FlushPolicy(max_rows=0)


attempts = st.builds(
    OrderAttempt, order_id=st.sampled_from(["o1", "o2"]), room_id=st.just("r1"), sku_id=st.sampled_from(["s1", "s2"]),
    user_id=st.sampled_from(["u1", "u2"]), quantity=st.integers(1, 100), ts=st.integers(T0, T0 + 10_000),
)



def test_an_answer_to_an_attempt_stores_the_attempt_that_was_decided() -> None:
    result = OrderResult(order_id="o1", room_id="r1", sku_id="s1", user_id="u1", status="accepted", quantity=2,
                         price_cents=990, reserved_until=T0 + 60_000, attempt_ts=T0, ts=T0 + 3)
    assert order_of_result(result) == OrderAttempt(order_id="o1", room_id="r1", sku_id="s1", user_id="u1",
                                                   quantity=2, ts=T0)
    for status in ("paid", "cancelled", "expired", "payment_refused"):
        assert order_of_result(msgspec.structs.replace(result, status=status)) is None


@given(st.lists(attempts, min_size=1, max_size=40))
def test_re_sent_attempts_never_change_the_stored_order(sent: list[OrderAttempt]) -> None:
    """The attack: an order_id re-sent with another quantity.  Raw attempts are never buffered; the
    orders rows come from the flash-sale core's answers, which repeat the first decision, so every
    stored row of an order equals its FIRST attempt (an order is its sku, user and order_id)."""
    inv = Inventory()
    inv.handle(SaleConfig(event_id="c1", room_id="r1", sku_id="s1", action="open", stock=1000, price_cents=990,
                          starts_at=T0, ends_at=T0 + 10**6, per_user_limit=1000, ts=T0))
    buffer = SinkBuffer()
    for attempt in sent:
        buffer.add("orders", attempt, now_ms=0)  # the raw attempt: not a row
        inv.handle(attempt)
    for result in inv.take_outputs()[0].results:
        buffer.add("order_results", result, now_ms=0)
    stored = buffer.drain().get("orders", [])
    first: dict[tuple[str, str, str], OrderAttempt] = {}
    for attempt in sent:
        first.setdefault((attempt.sku_id, attempt.user_id, attempt.order_id), attempt)
    assert len(stored) == len(sent)  # one answer per attempt, re-sends included ...
    for row in stored:  # ... and each is the first attempt of its order
        decided = first[(row.sku_id, row.user_id, row.order_id)]
        assert (row.quantity, row.ts) == (decided.quantity, decided.ts)


def test_a_raw_attempt_is_never_a_row() -> None:
    """Misrouted attempts are dead-lettered and never answered: with orders derived from answers,
    nothing of them reaches the warehouse."""
    buffer = SinkBuffer()
    buffer.add("orders", OrderAttempt(order_id="o9", room_id="r1", sku_id="s1", user_id="u1", ts=T0), now_ms=0)
    assert buffer.drain() == {}
