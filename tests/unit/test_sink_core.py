"""The sink's pure core: when a batch is due, and which offsets a written batch makes committable."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.settings import Settings
from schemas import encode
from schemas.events import Comment, DeadLetter, OrderAttempt, OrderResult, Payment, SaleConfig
from streams.flash_sale.inventory import Inventory
from streams.partitioning import default_partition
from streams.sink.core import FlushPolicy, SinkBuffer, order_of_result, owner_admits
from streams.sink.worker import decode_for_sink

T0 = 1_760_000_000_000

# (table, or None for a skipped message; topic; partition; offset gap; ms since the previous message)
message = st.tuples(
    st.sampled_from(["comments", "likes", None]),
    st.sampled_from(["t.a", "t.b"]),
    st.integers(0, 2),
    st.integers(1, 3),
    st.integers(0, 400),
)


@given(st.lists(message, max_size=60), st.integers(1, 30), st.integers(1, 30), st.integers(0, 2000))
def test_batches_hold_every_event_once_and_commit_past_every_message(
    messages: list[tuple[str | None, str, int, int, int]], max_rows: int, max_table_rows: int, max_age: int
) -> None:
    buffer = SinkBuffer(FlushPolicy(max_rows=max_rows, max_table_rows=max_table_rows, max_age_ms=max_age))
    next_offset: dict[tuple[str, int], int] = {}
    committed: dict[tuple[str, int], int] = {}
    written: list[int] = []
    expected: list[int] = []
    now = 0
    for i, (table, topic, partition, gap, elapsed) in enumerate(messages):
        now += elapsed
        offset = next_offset.get((topic, partition), 0) + gap - 1
        next_offset[(topic, partition)] = offset + 1
        if table is None:
            buffer.skip(topic, partition, offset, now)
        else:
            buffer.add(table, i, topic, partition, offset, now)
            expected.append(i)
        if not buffer.due(now):
            assert buffer.rows < max_rows
            continue
        batch = buffer.drain()
        assert batch.rows <= max_rows
        assert all(len(rows) <= max_table_rows for rows in batch.tables.values())
        written += [e for rows in batch.tables.values() for e in rows]
        committed.update(batch.offsets)
    final = buffer.drain()
    written += [e for rows in final.tables.values() for e in rows]
    committed.update(final.offsets)
    assert sorted(written) == expected
    assert committed == next_offset


def test_due_by_age_by_one_table_and_by_total() -> None:
    buffer = SinkBuffer(FlushPolicy(max_rows=3, max_table_rows=2, max_age_ms=100))
    assert not buffer.due(10**9) and buffer.ms_until_due(0) is None
    buffer.add("likes", "a", "t", 0, 0, now_ms=1000)
    assert not buffer.due(1099) and buffer.ms_until_due(1050) == 50
    assert buffer.due(1100)
    buffer.add("likes", "b", "t", 0, 1, now_ms=1001)
    assert buffer.due(1001)  # two in one table
    buffer.drain()
    for i, table in enumerate(["a", "b", "c"]):
        buffer.add(table, i, "t", 0, i, now_ms=2000)
    assert buffer.due(2000)  # three in all


def test_a_batch_of_only_skipped_messages_still_commits_them() -> None:
    buffer = SinkBuffer(FlushPolicy(max_age_ms=0))
    buffer.skip("t", 1, 41, now_ms=5)
    assert not buffer.empty and buffer.due(5)
    batch = buffer.drain()
    assert batch.tables == {} and batch.offsets == {("t", 1): 42} and batch.skipped == 1
    assert buffer.empty


def test_discard_drops_rows_and_offsets() -> None:
    buffer = SinkBuffer()
    buffer.add("likes", "x", "t", 0, 7, now_ms=0)
    assert buffer.discard() == 1
    assert buffer.empty and buffer.drain().offsets == {}


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        FlushPolicy(max_rows=0)


def test_decode_for_sink_skips_invalid_and_tombstones_and_keeps_big_dead_letters() -> None:
    settings = Settings.from_env({})
    comment = Comment(event_id="e1", room_id="r1", user_id="u1", text="hi", ts=T0)
    assert decode_for_sink(settings, "comments", encode(comment), T0) == comment
    assert decode_for_sink(settings, "comments", b"{not json", T0) is None
    assert decode_for_sink(settings, "comments", None, T0) is None
    assert decode_for_sink(settings, "comments", encode(comment), T0 - 10**9) is None  # from the future
    big = DeadLetter(source_topic="lc.comments", payload=b"x" * 60_000, reason="too big", ts=T0)
    assert len(encode(big)) > settings.max_message_bytes
    assert decode_for_sink(settings, "dead-letters", encode(big), T0) == big


# ---- what is stored: the decisions (issue 14, failures 6 and 10) ---------------------------------

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
    stored row of an order equals its FIRST attempt."""
    inv = Inventory()
    inv.handle(SaleConfig(event_id="c1", room_id="r1", sku_id="s1", action="open", stock=1000, price_cents=990,
                          starts_at=T0, ends_at=T0 + 10**6, per_user_limit=1000, ts=T0))
    buffer = SinkBuffer()
    for offset, attempt in enumerate(sent):
        buffer.add("orders", attempt, "lc.orders", 0, offset, now_ms=0)  # the raw attempt: not a row
        inv.handle(attempt)
    for offset, result in enumerate(inv.take_outputs()[0].results):
        buffer.add("order_results", result, "lc.order-results", 0, offset, now_ms=0)
    stored = buffer.drain().tables.get("orders", [])
    first: dict[tuple[str, str], OrderAttempt] = {}
    for attempt in sent:
        first.setdefault((attempt.sku_id, attempt.order_id), attempt)
    assert len(stored) == len(sent)  # one answer per attempt, re-sends included ...
    for row in stored:  # ... and each is the first attempt of its order
        decided = first[(row.sku_id, row.order_id)]
        assert (row.user_id, row.quantity, row.ts) == (decided.user_id, decided.quantity, decided.ts)


@given(sku=st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=12), partitions=st.integers(1, 12),
       partition=st.integers(0, 11))
def test_owner_admits_exactly_what_the_flash_sale_misroute_check_keeps(sku: str, partitions: int,
                                                                       partition: int) -> None:
    partition %= partitions
    pay = Payment(event_id="p1", order_id="o1", room_id="r1", sku_id=sku, user_id="u1", action="paid", ts=T0)
    home = default_partition(sku.encode(), partitions)
    assert owner_admits("payments", pay, partition, partitions) == (home == partition)
    assert owner_admits("sale-config-applied", pay, partition, partitions)  # our own outputs: always


def test_a_misrouted_attempt_gets_no_answer_so_no_order_row() -> None:
    """Misrouted attempts are dead-lettered by their owner and never answered: with orders derived from
    answers, nothing of them reaches the warehouse."""
    buffer = SinkBuffer()
    misrouted = OrderAttempt(order_id="o9", room_id="r1", sku_id="s1", user_id="u1", quantity=1, ts=T0)
    buffer.add("orders", misrouted, "lc.orders", 2, 0, now_ms=0)
    batch = buffer.drain()
    assert batch.tables == {} and batch.offsets == {("lc.orders", 2): 1}
