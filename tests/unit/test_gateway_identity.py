"""Who and when: identity from the token, time from the gateway, ids scoped by user; expiry and renewal (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import Event
from tests.strategies import ID_ALPHABET
from ws_gateway.actions import TOPIC_OF, ActionRejected, authorize_action, build_event, idempotency_key
from ws_gateway.auth import AuthError, Claims, CloseCode, expiry_plan, is_expired, mint_token, renew, verify_token
from ws_gateway.protocol import (
    CancelAction,
    CommentAction,
    HostActionMessage,
    ImpressionAction,
    LikeAction,
    OrderAction,
    PayAction,
    ProductClickAction,
    ProtocolError,
    parse_client_message,
)

SECRET = "unit-test-secret-of-at-least-32-bytes!"
NOW_S = 1_800_000_000
NOW_MS = NOW_S * 1000
ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=20)
client_ts = st.one_of(st.none(), st.integers(-(2**40), 2**62))


def attr(event: Event, name: str) -> Any:
    """A field of an event of any type (the union has no common fields to type-check against)."""
    return getattr(event, name)


def viewer(sub: str, room: str = "r1") -> Claims:
    return Claims(sub=sub, role="viewer", room=room, exp=NOW_S + 60)


actions = st.one_of(
    st.builds(CommentAction, text=st.just("好看"), event_id=st.one_of(st.none(), ids), ts=client_ts),
    st.builds(OrderAction, order_id=ids, sku_id=ids, ts=client_ts),
    st.builds(PayAction, order_id=ids, sku_id=ids, event_id=st.one_of(st.none(), ids), ts=client_ts),
    st.builds(CancelAction, order_id=ids, sku_id=ids, event_id=st.one_of(st.none(), ids), ts=client_ts),
)


@given(action=actions, sub=ids, room=ids)
def test_user_room_and_time_always_come_from_the_token_and_the_gateway(
    action: CommentAction | OrderAction | PayAction | CancelAction, sub: str, room: str
) -> None:
    event = build_event(action, viewer(sub, room), now_ms=NOW_MS, new_id=lambda: "fresh")
    assert (attr(event, "user_id"), attr(event, "room_id"), attr(event, "ts")) == (sub, room, NOW_MS)


@given(action=actions, alice=ids, bob=ids)
def test_two_users_sending_the_same_ids_never_produce_the_same_event_id(
    action: CommentAction | OrderAction | PayAction | CancelAction, alice: str, bob: str
) -> None:
    """A foreign pay or cancel for the victim's order id once became the victim's idempotent answer."""
    if alice == bob or isinstance(action, OrderAction) or (isinstance(action, CommentAction) and not action.event_id):
        return
    mine = build_event(action, viewer(alice), now_ms=NOW_MS, new_id=lambda: "x")
    theirs = build_event(action, viewer(bob), now_ms=NOW_MS + 1, new_id=lambda: "y")
    assert attr(mine, "event_id") != attr(theirs, "event_id")
    again = build_event(action, viewer(alice), now_ms=NOW_MS + 5, new_id=lambda: "z")
    assert attr(again, "event_id") == attr(mine, "event_id")  # the user's own retry: the same id


def test_the_same_order_id_paid_on_two_skus_gives_two_payments() -> None:
    first = build_event(PayAction(order_id="o1", sku_id="s1"), viewer("alice"), now_ms=NOW_MS, new_id=lambda: "x")
    second = build_event(PayAction(order_id="o1", sku_id="s2"), viewer("alice"), now_ms=NOW_MS, new_id=lambda: "x")
    assert attr(first, "event_id") != attr(second, "event_id")


@pytest.mark.parametrize("field", ["user_id", "room_id", "sku_owner"])
def test_a_frame_that_names_a_user_or_room_does_not_parse(field: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(f'{{"type":"pay","order_id":"o1","sku_id":"s1","{field}":"victim"}}')
    assert field in refused.value.message


def test_a_clients_future_ts_is_accepted_and_ignored() -> None:
    action = parse_client_message(b'{"type":"comment","text":"hi","ts":4102444700000}')
    assert isinstance(action, CommentAction)
    event = build_event(action, viewer("alice"), now_ms=NOW_MS, new_id=lambda: "x")
    assert attr(event, "ts") == NOW_MS


def test_only_viewers_send_viewer_actions_and_every_action_has_one_topic() -> None:
    host = Claims(sub="h", role="host", room="r1", exp=NOW_S)
    with pytest.raises(ActionRejected) as refused:
        authorize_action(host, LikeAction())
    assert refused.value.code == "forbidden_action"
    assert authorize_action(viewer("v"), LikeAction()) == "r1"
    assert set(TOPIC_OF) == {CommentAction, LikeAction, OrderAction, PayAction, CancelAction, ImpressionAction,
                             ProductClickAction, HostActionMessage}
    assert TOPIC_OF[HostActionMessage] == "host-actions"  # plus sale-config for sale verbs (test_gateway_host)


def test_idempotency_keys_are_scoped_by_user_room_and_kind() -> None:
    assert idempotency_key(CommentAction(text="x", event_id="k"), viewer("alice")) == ("alice", "r1", "comment", "k")
    assert idempotency_key(LikeAction(event_id="k"), viewer("alice")) == ("alice", "r1", "like", "k")
    assert idempotency_key(LikeAction(), viewer("alice")) is None
    assert idempotency_key(PayAction(order_id="o", sku_id="s", event_id="k"), viewer("alice")) is None


# ------------------------------------------------------------------------------------- expiry, renewal


@given(ttl=st.integers(1, 10**6), elapsed=st.floats(0, 10**6))
def test_the_close_is_planned_at_exp_and_the_warning_before_it(ttl: int, elapsed: float) -> None:
    claims = Claims(sub="h", role="host", room="r1", exp=NOW_S + ttl)
    now = NOW_S + min(elapsed, ttl)
    plan = expiry_plan(claims, now)
    assert plan.close_at == claims.exp
    assert now <= plan.warn_at <= plan.close_at and plan.close_at - plan.warn_at <= 30
    assert is_expired(claims, plan.close_at) and not is_expired(claims, plan.close_at - 0.001)


def test_a_renewal_must_keep_the_identity_and_moves_exp() -> None:
    current = verify_token(SECRET, mint_token(SECRET, sub="h", role="host", room="r1", now_s=NOW_S, ttl_s=3),
                           now_s=NOW_S)
    fresh = renew(SECRET, current, mint_token(SECRET, sub="h", role="host", room="r1", now_s=NOW_S, ttl_s=600),
                  now_s=NOW_S + 1)
    assert fresh.exp == NOW_S + 600 and (fresh.sub, fresh.role, fresh.room) == ("h", "host", "r1")
    for other in (dict(sub="mallory", role="host", room="r1"), dict(sub="h", role="host", room="r2"),
                  dict(sub="h", role="ops", room=None)):
        with pytest.raises(AuthError) as refused:
            renew(SECRET, current, mint_token(SECRET, now_s=NOW_S, ttl_s=600, **other), now_s=NOW_S)
        assert refused.value.code == CloseCode.TOKEN_INVALID
    with pytest.raises(AuthError) as expired:
        renew(SECRET, current, mint_token(SECRET, sub="h", role="host", room="r1", now_s=NOW_S - 100, ttl_s=50),
              now_s=NOW_S)
    assert expired.value.code == CloseCode.TOKEN_EXPIRED


@pytest.mark.parametrize(("sub", "room"), [("a@b.com", "r1"), ("u", "room with space"), ("x" * 65, "r1")])
def test_a_token_whose_ids_cannot_become_event_fields_is_refused(sub: str, room: str) -> None:
    import jwt

    token = jwt.encode({"sub": sub, "role": "viewer", "room": room, "exp": NOW_S + 60}, SECRET)
    with pytest.raises(AuthError) as refused:
        verify_token(SECRET, token, now_s=NOW_S)
    assert refused.value.code == CloseCode.TOKEN_INVALID


@given(st.lists(st.text(alphabet="ab:", min_size=1, max_size=4), min_size=3, max_size=3),
       st.lists(st.text(alphabet="ab:", min_size=1, max_size=4), min_size=3, max_size=3))
def test_derived_ids_of_different_parts_never_collide(one: list[str], other: list[str]) -> None:
    """The outside attack's shape: user ``ev`` with key ``il:x`` and user ``ev:il`` with key ``x``."""
    from ws_gateway.actions import derived_id

    if one != other:
        assert derived_id(*one) != derived_id(*other)
    assert derived_id("comment", "ev", "il:x") != derived_id("comment", "ev:il", "x")
