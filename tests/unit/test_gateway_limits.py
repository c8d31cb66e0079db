"""Per-connection rate limit, like coalescing, actions into events, the order ledger and the hub (pure)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Comment, OrderAttempt, OrderResult, Payment
from ws_gateway.actions import DEAD_LETTER_SOURCE, ActionRejected, OrderLedger, build_event, dead_letter, derived_id
from ws_gateway.auth import Claims
from ws_gateway.hub import Hub
from ws_gateway.likes import MAX_LIKES_PER_EVENT, LikeCoalescer
from ws_gateway.protocol import CancelAction, CommentAction, OrderAction, PayAction
from ws_gateway.ratelimit import TokenBucket

NOW_MS = 1_800_000_000_000
VIEWER = Claims(sub="alice", role="viewer", room="r1", exp=0)


@given(rate=st.floats(0.5, 100), burst=st.integers(1, 50),
       gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_a_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int,
                                                                        gaps: list[float]) -> None:
    bucket, now, allowed = TokenBucket(rate, burst), 0.0, 0
    for gap in gaps:
        now += gap
        allowed += bucket.allow(now)
    assert allowed <= burst + rate * now + 1e-9


def test_a_bucket_refills_over_time() -> None:
    bucket = TokenBucket(rate=2, burst=2)
    assert bucket.allow(0) and bucket.allow(0) and not bucket.allow(0)
    assert bucket.allow(0.5) and not bucket.allow(0.5)


@given(taps=st.lists(st.tuples(st.sampled_from(["r1", "r2", "r3"]), st.integers(1, 60_000),
                               st.floats(0, 0.3)), max_size=80))
def test_coalesced_likes_add_up_exactly_and_wait_their_interval(taps: list[tuple[str, int, float]]) -> None:
    likes: LikeCoalescer[int] = LikeCoalescer(interval_s=0.2)
    now, emitted, tickets = 0.0, [], []
    first_seen: dict[str, float] = {}
    for i, (room, count, dt) in enumerate(taps):
        now += dt
        out = likes.due(now)
        for room_out in {batch.room for batch in out}:
            assert now - first_seen.pop(room_out) >= 0.2
        emitted += [(batch.room, n) for batch in out for n in batch.parts]
        tickets += [(batch.room, t) for batch in out for t in batch.tickets]
        first_seen.setdefault(room, now)
        likes.add(room, count, now, ticket=i)
    final = likes.due(now, force=True)
    emitted += [(batch.room, n) for batch in final for n in batch.parts]
    tickets += [(batch.room, t) for batch in final for t in batch.tickets]
    assert likes.pending == 0
    assert all(1 <= n <= MAX_LIKES_PER_EVENT for _, n in emitted)
    for room in ("r1", "r2", "r3"):
        assert sum(n for r, n in emitted if r == room) == sum(c for r, c, _ in taps if r == room)
    # every tap's ticket leaves exactly once, with the batch of its own room (it is acked on that batch's delivery)
    assert sorted(t for _, t in tickets) == list(range(len(taps)))
    assert all(taps[t][0] == room for room, t in tickets)


def test_events_take_room_and_user_from_the_token_not_the_frame() -> None:
    ids = (f"id{i}" for i in itertools.count())
    comment = build_event(CommentAction(text="  好看  "), VIEWER, now_ms=NOW_MS, new_id=lambda: next(ids))
    assert comment == Comment(event_id="id0", room_id="r1", user_id="alice", text="好看", ts=NOW_MS)
    order = build_event(OrderAction(order_id="o1", sku_id="s1", quantity=2), VIEWER, now_ms=NOW_MS,
                        new_id=lambda: "x")
    assert isinstance(order, OrderAttempt) and (order.room_id, order.user_id, order.quantity) == ("r1", "alice", 2)


def test_a_retried_payment_or_cancel_gets_the_same_event_id() -> None:
    pay = [build_event(PayAction(order_id="o1", sku_id="s"), VIEWER, now_ms=NOW_MS + i, new_id=lambda: "x")
           for i in range(2)]
    cancel = build_event(CancelAction(order_id="o1", sku_id="s"), VIEWER, now_ms=NOW_MS, new_id=lambda: "x")
    assert isinstance(pay[0], Payment) and isinstance(cancel, Payment)
    assert pay[0].event_id == pay[1].event_id != cancel.event_id
    assert (pay[0].action, cancel.action) == ("paid", "cancelled")
    assert len(derived_id("cancelled", "o" * 64)) <= 64


@pytest.mark.parametrize(
    ("action", "claims", "code"),
    [
        (CommentAction(text="\u200b  "), VIEWER, "invalid_action"),
        (CommentAction(text="x" * 600), VIEWER, "invalid_action"),
        (OrderAction(order_id="o", sku_id="s", quantity=0), VIEWER, "invalid_action"),
        (OrderAction(order_id="o", sku_id="s"), Claims(sub="h", role="host", room="r1", exp=0), "forbidden_action"),
        (CommentAction(text="hi"), Claims(sub="o", role="ops", room=None, exp=0), "forbidden_action"),
    ],
)
def test_refused_actions_say_why(action: CommentAction | OrderAction, claims: Claims, code: str) -> None:
    with pytest.raises(ActionRejected) as refused:
        build_event(action, claims, now_ms=NOW_MS, new_id=lambda: "x")
    assert refused.value.code == code and refused.value.message


def test_a_dead_letter_keeps_the_original_bytes_and_reason_and_names_the_gateway() -> None:
    letter = dead_letter(b"{raw", "invalid_json: nope", user="alice", now_ms=NOW_MS)
    assert (letter.payload, letter.reason, letter.key, letter.partition) == (b"{raw", "invalid_json: nope",
                                                                             b"alice", -1)
    assert letter.source_topic == DEAD_LETTER_SOURCE == "gateway"


def test_the_ledger_answers_a_retry_and_forgets_the_oldest_beyond_capacity() -> None:
    ledger = OrderLedger(capacity=2)
    for i in range(3):
        result = OrderResult(order_id=f"o{i}", room_id="r1", sku_id="s", user_id="alice", status="accepted",
                             attempt_ts=NOW_MS, ts=NOW_MS)
        ledger.record(result, {"order_id": f"o{i}"})
    assert ledger.answer("alice", "s", "o0") is None
    assert ledger.answer("alice", "s", "o2") == {"order_id": "o2"}
    assert ledger.answer("bob", "s", "o2") is None  # another user's order id is not this user's answer
    assert ledger.answer("alice", "other-sku", "o2") is None  # nor the same id on another SKU


def test_the_hub_routes_by_room_audience_and_user_and_forgets_on_disconnect() -> None:
    hub: Hub[str] = Hub()
    hub.subscribe("host1", "r1", "host")
    hub.subscribe("v1", "r1", "viewer")
    hub.add_viewer("v1", "r1", "alice")
    hub.add_viewer("v2", "r1", "alice")
    assert hub.members("r1", "host") == {"host1"} and hub.members("r1", "viewer") == {"v1"}
    assert hub.of_user("r1", "alice") == {"v1", "v2"} and hub.of_user("r2", "alice") == set()
    hub.remove("v1")
    assert hub.members("r1", "viewer") == set() and hub.of_user("r1", "alice") == {"v2"}
    hub.remove("v2")
    hub.remove("host1")
    assert len(hub) == 0 and hub.rooms() == set()
