"""Client frames of the gateway protocol: typed when valid, a ProtocolError that says why when not."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_gateway.protocol import (
    CommentAction,
    LikeAction,
    OrderAction,
    PayAction,
    Ping,
    ProtocolError,
    Renew,
    Subscribe,
    ack,
    error,
    parse_client_message,
    ref_of,
)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"subscribe"}', Subscribe()),
        ('{"type":"subscribe","room":"r1","last_seq":4,"epoch":"e"}', Subscribe(room="r1", last_seq=4, epoch="e")),
        ('{"type":"comment","text":"好看","ref":"x"}', CommentAction(text="好看", ref="x")),
        ('{"type":"like","count":3}', LikeAction(count=3)),
        ('{"type":"order","order_id":"o1","sku_id":"s1","quantity":2}',
         OrderAction(order_id="o1", sku_id="s1", quantity=2)),
        ('{"type":"pay","order_id":"o1","sku_id":"s1"}', PayAction(order_id="o1", sku_id="s1")),
        ('{"type":"ping"}', Ping()),
    ],
)
def test_valid_frames_decode_to_their_type(frame: str, expected: object) -> None:
    assert parse_client_message(frame) == expected


@pytest.mark.parametrize(
    ("frame", "code", "mentions"),
    [
        ("{nope", "invalid_json", "JSON"),
        ('{"type":"teleport"}', "invalid_message", "teleport"),
        ('{"text":"no type"}', "invalid_message", "type"),
        ('{"type":"like","count":0}', "invalid_message", "count"),
        ('{"type":"like","count":1000}', "invalid_message", "count"),
        ('{"type":"order","order_id":"has space","sku_id":"s"}', "invalid_message", "order_id"),
        ('{"type":"ping","extra":1}', "invalid_message", "extra"),
        ('{"type":"subscribe","last_seq":-1}', "invalid_message", "last_seq"),
    ],
)
def test_invalid_frames_say_what_is_wrong(frame: str, code: str, mentions: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(frame)
    assert refused.value.code == code and mentions in refused.value.message


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_protocol_error_only(raw: bytes) -> None:
    try:
        parse_client_message(raw)
    except ProtocolError as exc:
        assert exc.code in {"invalid_json", "invalid_message"}


def test_server_frames_are_json_with_the_ref_echoed() -> None:
    assert orjson.loads(error("rate_limited", "slow down", "r9")) == {
        "type": "error", "code": "rate_limited", "message": "slow down", "ref": "r9"}
    assert orjson.loads(ack("order", "r1", order_id="o1")) == {
        "type": "ack", "action": "order", "ref": "r1", "order_id": "o1"}


def test_renew_and_client_ts_parse_and_an_unparsable_frame_still_gives_its_ref() -> None:
    assert parse_client_message('{"type":"renew","token":"abc","ref":"r"}') == Renew(token="abc", ref="r")
    assert parse_client_message('{"type":"like","ts":123,"event_id":"k"}') == LikeAction(ts=123, event_id="k")
    assert ref_of(b'{"type":"pay","user_id":"victim","ref":"forged"}') == "forged"
    assert ref_of(b"{nope") is None and ref_of(b'{"ref": 5}') is None and ref_of(b"[1]") is None
