"""Host actions through the gateway (pure): who may act, where, with which terms; and the pinned card a room
shows viewers."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import HostAction, SaleConfig, StockUpdate
from schemas.base import MAX_PRICE_CENTS
from tests.strategies import ID_ALPHABET
from ws_gateway.actions import ActionRejected, SkuRooms, build_host_events, idempotency_key
from ws_gateway.auth import Claims
from ws_gateway.protocol import HostActionMessage, ProtocolError, parse_client_message
from ws_gateway.rooms import RoomState

NOW_S = 1_800_000_000
NOW_MS = NOW_S * 1000
ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=20)


def claims(role: str = "host", room: str | None = "r1", sub: str = "h1") -> Claims:
    return Claims(sub=sub, role=role, room=room, exp=NOW_S + 60)  # type: ignore[arg-type]


def host_message(**fields: Any) -> HostActionMessage:
    message = parse_client_message(msgspec.json.encode({"type": "host_action", **fields}))
    assert isinstance(message, HostActionMessage)
    return message


valid_actions = st.one_of(
    st.builds(HostActionMessage, action=st.sampled_from(["pin", "unpin", "close_sale"]), sku_id=ids,
              event_id=st.one_of(st.none(), ids), ts=st.one_of(st.none(), st.integers(0, 2**62))),
    st.builds(HostActionMessage, action=st.just("restock"), sku_id=ids, stock=st.integers(1, 10_000_000)),
    st.builds(
        HostActionMessage, action=st.just("open_sale"), sku_id=ids, stock=st.integers(0, 10_000_000),
        price_cents=st.integers(0, MAX_PRICE_CENTS), starts_at=st.integers(NOW_MS - 10**9, NOW_MS + 10**9),
        ends_at=st.integers(NOW_MS + 1, NOW_MS + 2 * 10**9),
    ).filter(lambda a: a.ends_at is not None and a.starts_at is not None and a.ends_at > a.starts_at),
)


@given(action=valid_actions, sub=ids, room=ids)
def test_a_hosts_action_is_in_its_tokens_room_by_its_tokens_host_at_the_gateways_time(
    action: HostActionMessage, sub: str, room: str
) -> None:
    record, config = build_host_events(action, claims(sub=sub, room=room), now_ms=NOW_MS, new_id=lambda: "fresh")
    assert (record.room_id, record.host_id, record.ts, record.action, record.sku_id) == (
        room, sub, NOW_MS, action.action, action.sku_id)
    if action.action in ("pin", "unpin"):
        assert config is None
    else:  # the command names the audit record, and is the command of its verb
        assert config is not None
        assert (config.event_id, config.room_id, config.sku_id) == (record.event_id, room, action.sku_id)
        assert config.action == {"open_sale": "open", "close_sale": "close", "restock": "restock"}[action.action]


@given(action=valid_actions, role=st.sampled_from(["viewer", "ops"]))
def test_viewers_and_ops_can_never_act_as_hosts(action: HostActionMessage, role: str) -> None:
    with pytest.raises(ActionRejected) as refused:
        build_host_events(action, claims(role=role, room=None if role == "ops" else "r1"), now_ms=NOW_MS,
                          new_id=lambda: "x")
    assert refused.value.code == "forbidden_action"


@given(action=valid_actions, other=ids)
def test_a_sku_on_sale_in_another_room_is_refused(action: HostActionMessage, other: str) -> None:
    known = SkuRooms()
    known.learn(action.sku_id, other)
    if other == "r1":
        build_host_events(action, claims(), now_ms=NOW_MS, new_id=lambda: "x", sku_room=known.room_of)
        return
    with pytest.raises(ActionRejected) as refused:
        build_host_events(action, claims(), now_ms=NOW_MS, new_id=lambda: "x", sku_room=known.room_of)
    assert refused.value.code == "forbidden_action" and "on sale in another room" in refused.value.message


@given(key=ids, alice=ids, bob=ids)
def test_a_retried_click_has_the_same_event_id_and_another_hosts_never_does(key: str, alice: str, bob: str) -> None:
    action = host_message(action="pin", sku_id="s1", event_id=key)
    first, _ = build_host_events(action, claims(sub=alice), now_ms=NOW_MS, new_id=lambda: "a")
    again, _ = build_host_events(action, claims(sub=alice), now_ms=NOW_MS + 5, new_id=lambda: "b")
    other, _ = build_host_events(action, claims(sub=bob), now_ms=NOW_MS, new_id=lambda: "c")
    assert first.event_id == again.event_id
    assert (first.event_id == other.event_id) == (alice == bob)
    assert idempotency_key(action, claims(sub=alice)) == (alice, "r1", "host_action", key)


@pytest.mark.parametrize(("fields", "words"), [
    ({"action": "open_sale", "sku_id": "s", "stock": 5, "starts_at": NOW_MS, "ends_at": NOW_MS + 60_000},
     "price_cents"),
    ({"action": "open_sale", "sku_id": "s", "stock": 5, "price_cents": 100, "starts_at": NOW_MS + 9,
      "ends_at": NOW_MS + 9}, "ends_at must be after starts_at"),
    ({"action": "open_sale", "sku_id": "s", "stock": 5, "price_cents": 100, "starts_at": NOW_MS - 9,
      "ends_at": NOW_MS - 1}, "already be over"),
    ({"action": "open_sale", "sku_id": "s", "stock": 5, "price_cents": MAX_PRICE_CENTS + 1, "starts_at": NOW_MS,
      "ends_at": NOW_MS + 1000}, "price_cents"),
    ({"action": "restock", "sku_id": "s", "stock": 0}, "restock needs stock > 0"),
    ({"action": "restock", "sku_id": "s"}, "restock needs stock > 0"),
    ({"action": "pin", "sku_id": "s", "title": "  "}, "title"),
])
def test_terms_that_break_the_shared_schemas_rules_are_refused_with_the_reason(fields: dict[str, Any],
                                                                               words: str) -> None:
    with pytest.raises(ActionRejected) as refused:
        build_host_events(host_message(**fields), claims(), now_ms=NOW_MS, new_id=lambda: "x")
    assert refused.value.code == "invalid_action" and words in refused.value.message


@pytest.mark.parametrize("frame", [
    {"action": "delete_room", "sku_id": "s"},  # no such verb
    {"action": "pin", "sku_id": "s", "room_id": "r2"},  # the room is the token's, never the frame's
    {"action": "pin", "sku_id": "s", "host_id": "someone-else"},
    {"action": "restock", "sku_id": "s", "stock": -1},
    {"action": "pin", "sku_id": "not an id!"},
    {"action": "pin"},
])
def test_frames_that_do_not_fit_the_protocol_do_not_parse(frame: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(msgspec.json.encode({"type": "host_action", **frame}))
    assert refused.value.code == "invalid_message"


def _pin(sku: str, ts: int, action: str = "pin", title: str | None = None) -> HostAction:
    return HostAction(event_id=f"e{ts}", room_id="r1", host_id="h1", action=action, sku_id=sku,  # type: ignore[arg-type]
                      title=title, ts=ts)


def _updates(room: RoomState) -> dict[str, dict[str, Any]]:
    return {audience: msgspec.json.decode(data) for audience, data in room.flush().items()}


def test_viewers_get_the_pinned_card_with_its_applied_terms_only_when_it_changes() -> None:
    room = RoomState("r1", "ep")
    assert room.apply(_pin("s1", 10, title="Silk scarf"))
    out = _updates(room)
    assert out["viewer"]["pinned"]["sku_id"] == "s1" and out["viewer"]["pinned"]["title"] == "Silk scarf"
    assert out["viewer"]["pinned"]["price_cents"] is None  # pinned, not on sale yet
    sale = SaleConfig(event_id="o1", room_id="r1", sku_id="s1", action="open", stock=5, price_cents=12900,
                      starts_at=1000, ends_at=2000, ts=20)
    assert room.apply(sale)
    out = _updates(room)
    assert out["viewer"]["pinned"]["price_cents"] == 12900 and out["viewer"]["pinned"]["ends_at"] == 2000
    assert out["host"]["sales"]["s1"]["event_id"] == "o1" and out["host"]["sales"]["s1"]["state"] == "open"
    assert not room.apply(sale)  # applied once
    room.apply(StockUpdate(room_id="r1", sku_id="s1", available=4, reserved=1, sold=0, total=5, ts=30))
    out = _updates(room)
    assert set(out["viewer"]) == {"type", "room", "epoch", "seq", "stock"}  # stock moves; the card does not
    assert not room.apply(_pin("s0", 5))  # an older pin (a replay) does not bring an old card back
    assert not room.apply(_pin("s9", 40, action="unpin"))  # unpinning what is not pinned changes nothing
    assert room.apply(_pin("s1", 50, action="unpin"))
    assert _updates(room)["viewer"]["pinned"] is None
    assert msgspec.json.decode(room.snapshot("viewer"))["pinned"] is None
    assert "sales" not in msgspec.json.decode(room.snapshot("viewer"))


def test_a_sale_verb_changes_nothing_until_the_flash_sale_job_applied_it() -> None:
    room = RoomState("r1", "ep")
    asked = HostAction(event_id="o1", room_id="r1", host_id="h1", action="open_sale", sku_id="s1", stock=5,
                       price_cents=100, starts_at=1, ends_at=2, ts=10)
    assert not room.apply(asked)
    assert room.flush() == {}
