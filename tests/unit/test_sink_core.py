"""The sink's pure core: when a batch is due, and which offsets a written batch makes committable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.settings import Settings
from schemas import encode
from schemas.events import Comment, DeadLetter
from streams.sink.core import FlushPolicy, SinkBuffer
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
