"""Event validation: clear errors for bad input, exact round trips for good input."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    EVENT_TYPES,
    TOPICS,
    Comment,
    OrderAttempt,
    SaleConfig,
    ValidationError,
    decode,
    encode,
    normalize_text,
)
from schemas.base import MAX_TEXT_CHARS, MAX_TS_MS
from schemas.console import UNSTORED_TYPES
from tests.strategies import json_values, struct_kwargs, valid_events

TS = 1_767_225_600_000  # 2026-01-01
ALL_TYPES = sorted(EVENT_TYPES.items())
TYPE_IDS = [tag for tag, _ in ALL_TYPES]

relaxed = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def comment_json(**overrides: object) -> bytes:
    body: dict[str, object] = {"event_id": "e1", "room_id": "r1", "user_id": "u1", "text": "hello", "ts": TS}
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


@pytest.mark.parametrize(("tag", "cls"), ALL_TYPES, ids=TYPE_IDS)
@relaxed
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_validation_error(tag: str, cls: type, raw: bytes) -> None:
    try:
        decode(cls, raw, now_ms=TS)
    except ValidationError as exc:
        assert exc.reason


@pytest.mark.parametrize(("tag", "cls"), ALL_TYPES, ids=TYPE_IDS)
@relaxed
@given(value=json_values)
def test_arbitrary_json_only_raises_validation_error(tag: str, cls: type, value: object) -> None:
    try:
        decode(cls, json.dumps(value).encode(), now_ms=TS)
    except ValidationError as exc:
        assert exc.reason


@pytest.mark.parametrize(("tag", "cls"), ALL_TYPES, ids=TYPE_IDS)
@relaxed
@given(data=st.data())
def test_right_keys_with_arbitrary_values_only_raise_validation_error(tag: str, cls: type, data: st.DataObject) -> None:
    fields = [f.name for f in msgspec.structs.fields(cls)]
    body = {name: data.draw(json_values) for name in data.draw(st.lists(st.sampled_from(fields), unique=True))}
    try:
        decode(cls, json.dumps(body).encode(), now_ms=TS)
    except ValidationError as exc:
        assert exc.reason


@pytest.mark.parametrize(("tag", "cls"), ALL_TYPES, ids=TYPE_IDS)
@relaxed
@given(data=st.data())
def test_valid_events_round_trip_exactly(tag: str, cls: type, data: st.DataObject) -> None:
    event = data.draw(valid_events(cls))
    wire = encode(event)
    back = decode(cls, wire, now_ms=MAX_TS_MS, max_bytes=1 << 20)
    assert back == event
    assert encode(back) == wire


@pytest.mark.parametrize(("tag", "cls"), ALL_TYPES, ids=TYPE_IDS)
@relaxed
@given(data=st.data())
def test_decoding_an_event_without_its_type_tag_works(tag: str, cls: type, data: st.DataObject) -> None:
    event = data.draw(valid_events(cls))
    body = msgspec.json.decode(encode(event))
    assert body.pop("type") == tag
    assert decode(cls, msgspec.json.encode(body), now_ms=MAX_TS_MS, max_bytes=1 << 20) == event


@given(text=st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_text_is_normalised_full_width_and_controls() -> None:
    c = decode(Comment, comment_json(text="  ＹＹＤＳ１２３\u200b  好\t\n看 "), now_ms=TS)
    assert c.text == "YYDS123 好 看"


def test_text_longer_than_cap_is_rejected_with_its_length() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_TEXT_CHARS}"):
        decode(Comment, comment_json(text="好" * (MAX_TEXT_CHARS + 1)), now_ms=TS)


def test_blank_text_is_rejected() -> None:
    with pytest.raises(ValidationError, match="empty after normalisation"):
        decode(Comment, comment_json(text=" \u200b\t "), now_ms=TS)


def test_missing_field_names_the_field() -> None:
    with pytest.raises(ValidationError, match="user_id"):
        decode(Comment, comment_json(user_id=...), now_ms=TS)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown field `colour`"):
        decode(Comment, comment_json(colour="red"), now_ms=TS)


def test_wrong_type_tag_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"\$\.type"):
        decode(Comment, comment_json(type="like"), now_ms=TS)


def test_id_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValidationError, match="room_id"):
        decode(Comment, comment_json(room_id="r1\n"), now_ms=TS)


def test_timestamp_from_the_future_is_rejected() -> None:
    with pytest.raises(ValidationError, match="in the future"):
        decode(Comment, comment_json(ts=TS + 3_600_000), now_ms=TS)


def test_timestamp_before_2020_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"\$\.ts"):
        decode(Comment, comment_json(ts=1_000), now_ms=TS)


def test_message_over_size_cap_is_rejected_before_parsing() -> None:
    with pytest.raises(ValidationError, match="at most 100 bytes"):
        decode(Comment, comment_json(text="x" * 200), now_ms=TS, max_bytes=100)


def test_boolean_is_not_an_integer() -> None:
    raw = b'{"order_id":"o1","room_id":"r","sku_id":"s","user_id":"u","quantity":true,"ts":%d}' % TS
    with pytest.raises(ValidationError, match="quantity"):
        decode(OrderAttempt, raw, now_ms=TS)


def test_order_quantity_out_of_range() -> None:
    raw = b'{"order_id":"o1","room_id":"r","sku_id":"s","user_id":"u","quantity":0,"ts":%d}' % TS
    with pytest.raises(ValidationError, match=">= 1"):
        decode(OrderAttempt, raw, now_ms=TS)


def test_sale_open_needs_stock_price_and_times() -> None:
    raw = b'{"event_id":"c1","room_id":"r","sku_id":"s","action":"open","ts":%d}' % TS
    with pytest.raises(ValidationError, match="open needs stock, price_cents, starts_at, ends_at"):
        decode(SaleConfig, raw, now_ms=TS)


def test_sale_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="ends_at must be after starts_at"):
        SaleConfig(event_id="c", room_id="r", sku_id="s", action="open", stock=1, price_cents=1,
                   starts_at=TS, ends_at=TS, ts=TS)


@relaxed
@given(kwargs=struct_kwargs(OrderAttempt))
def test_order_key_is_its_sku(kwargs: dict[str, object]) -> None:
    event = OrderAttempt(**kwargs)  # type: ignore[arg-type]
    assert TOPICS["orders"].key_of(event) == event.sku_id.encode()


def test_every_event_type_has_a_topic_and_its_key_field_exists() -> None:
    carried = {spec.event for spec in TOPICS.values()}
    assert carried == set(EVENT_TYPES.values()) | set(UNSTORED_TYPES.values())  # unstored: no table
    for spec in TOPICS.values():
        assert spec.key_field in {f.name for f in msgspec.structs.fields(spec.event)}


def test_orders_payments_and_sale_config_share_the_sku_key() -> None:
    assert {TOPICS[n].key_field for n in ("orders", "payments", "sale-config")} == {"sku_id"}
    assert {TOPICS[n].key_field for n in ("comments", "likes", "presence", "room-counters")} == {"room_id"}


def test_an_event_type_maps_to_its_input_topic_in_a_last_wins_map() -> None:
    """SaleConfig rides on two topics (the input and the configs the job applied): producers that
    build {event type: topic} over TOPICS (the simulator, tests) must keep writing to the input."""
    assert {spec.event: name for name, spec in TOPICS.items()}[SaleConfig] == "sale-config"
