"""The sink's pure core: when a batch is due, and that every buffered event is written once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sink.core import FlushPolicy, SinkBuffer

# (table; ms since the previous message)
message = st.tuples(st.sampled_from(["comments", "likes", "orders"]), st.integers(0, 400))


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
