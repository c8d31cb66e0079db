"""The console's events: a join says where the viewer came from, host actions carry valid terms and
become the sale command with the same id; every new event is keyed by its room."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import TOPICS, HostAction, Presence, SaleConfig, ValidationError, decode, validate
from schemas.events import TRAFFIC_SOURCES, TrafficSource
from schemas.host import sale_config_for
from tests.strategies import valid_events

TS = 1_767_225_600_000


def presence_json(**fields: object) -> bytes:
    body: dict[str, object] = {"event_id": "p1", "room_id": "r1", "user_id": "u1", "action": "join", "ts": TS}
    body.update(fields)
    return json.dumps(body).encode()


def test_a_join_carries_its_source_and_follower_flag() -> None:
    event = decode(Presence, presence_json(source="search", is_follower=True), now_ms=TS)
    assert (event.source, event.is_follower) == ("search", True)
    old_client = decode(Presence, presence_json(), now_ms=TS)
    assert (old_client.source, old_client.is_follower) == (None, None)


def test_the_source_list_is_the_schema_literal() -> None:
    assert set(TRAFFIC_SOURCES) == set(TrafficSource.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize("action", ["leave", "heartbeat"])
def test_only_a_join_may_have_a_source(action: str) -> None:
    with pytest.raises(ValidationError, match="belong to a join"):
        decode(Presence, presence_json(action=action, source="ads"), now_ms=TS)
    with pytest.raises(ValidationError, match="belong to a join"):
        decode(Presence, presence_json(action=action, is_follower=False), now_ms=TS)


def test_an_unknown_source_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        decode(Presence, presence_json(source="tv"), now_ms=TS)
    assert info.value.path == "$.source"


def host_json(**fields: object) -> bytes:
    body: dict[str, object] = {"event_id": "h1", "room_id": "r1", "host_id": "host-1", "sku_id": "sku-1", "ts": TS}
    body.update(fields)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"action": "open_sale", "stock": 10}, "open_sale needs price_cents, starts_at, ends_at"),
        ({"action": "open_sale", "stock": 1, "price_cents": 1, "starts_at": TS, "ends_at": TS}, "after starts_at"),
        ({"action": "restock"}, "restock needs stock"),
        ({"action": "restock", "stock": 0}, "restock needs stock"),
        ({"action": "delete_room"}, r"Invalid enum value .delete_room. - at `\$.action`"),
    ],
)
def test_invalid_host_actions_are_refused_with_the_reason(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        decode(HostAction, host_json(**fields), now_ms=TS)


def test_a_pin_commands_no_sale() -> None:
    assert sale_config_for(decode(HostAction, host_json(action="pin"), now_ms=TS)) is None


def test_open_sale_becomes_the_sale_config_with_the_same_id_and_terms() -> None:
    action = decode(HostAction, host_json(action="open_sale", stock=50, price_cents=9900, starts_at=TS,
                                          ends_at=TS + 60_000, title="口红", reservation_ttl_s=120), now_ms=TS)
    config = sale_config_for(action)
    assert config == SaleConfig(event_id="h1", room_id="r1", sku_id="sku-1", action="open", stock=50,
                                price_cents=9900, starts_at=TS, ends_at=TS + 60_000, per_user_limit=1,
                                reservation_ttl_s=120, title="口红", ts=TS)


@given(action=valid_events(HostAction))
def test_every_valid_sale_action_becomes_a_valid_sale_config(action: HostAction) -> None:
    config = sale_config_for(action)  # type: ignore[arg-type]
    if action.action in ("pin", "unpin"):  # type: ignore[attr-defined]
        assert config is None
        return
    assert config is not None
    assert validate(config) == config
    assert (config.event_id, config.room_id, config.sku_id, config.ts) == (
        action.event_id, action.room_id, action.sku_id, action.ts)  # type: ignore[attr-defined]
    verb = {"open_sale": "open", "close_sale": "close", "restock": "restock"}
    assert config.action == verb[action.action]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["impressions", "product-clicks", "follows", "shares", "host-actions",
                                  "room-benchmarks"])
def test_console_topics_are_keyed_by_room(name: str) -> None:
    assert TOPICS[name].key_field == "room_id"


def test_benchmarks_are_compacted() -> None:
    assert TOPICS["room-benchmarks"].config["cleanup.policy"] == "compact"


@given(st.sampled_from(sorted(TRAFFIC_SOURCES)))
def test_every_source_round_trips(source: str) -> None:
    assert decode(Presence, presence_json(source=source), now_ms=TS).source == source
