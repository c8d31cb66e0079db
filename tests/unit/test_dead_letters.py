"""The validation gate: invalid bytes become a DeadLetter with the reason; valid bytes an event.

One partition, so every key is at home: these tests are about validation, not routing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas import Comment, DeadLetter, OrderAttempt, decode, encode
from schemas.base import Event
from streams.dead_letters import MAX_KEPT_PAYLOAD
from streams.runtime.gate import Gate, Refused

TS = 1_767_225_600_000
GATE = Gate({"lc.comments": "comments", "lc.orders": "orders"}, {"comments", "orders"}, partitions=1,
            max_bytes=16_384, max_future_skew_ms=2_000)


def parse_or_dead_letter(topic: str, raw: bytes | None, key: bytes | None = None, partition: int = 0,
                         offset: int = -1) -> Event | DeadLetter:
    verdict = GATE.check(topic, partition, offset, key, raw, TS)
    assert verdict is not None  # owned inputs are never skipped silently
    return verdict.letter if isinstance(verdict, Refused) else verdict


def test_valid_message_passes_through() -> None:
    raw = encode(Comment(event_id="e1", room_id="r1", user_id="u1", text="666", ts=TS))
    out = parse_or_dead_letter("lc.comments", raw, key=b"r1")
    assert isinstance(out, Comment) and out.text == "666"


def test_invalid_message_keeps_bytes_key_coordinates_and_reason() -> None:
    raw = b'{"order_id":"o1","room_id":"r","sku_id":"s","user_id":"u","quantity":-3,"ts":1767225600000}'
    out = parse_or_dead_letter("lc.orders", raw, key=b"s", partition=2, offset=41)
    assert isinstance(out, DeadLetter)
    assert (out.payload, out.key, out.partition, out.offset, out.source_topic) == (raw, b"s", 2, 41, "lc.orders")
    assert "quantity" in out.reason
    assert decode(DeadLetter, encode(out), now_ms=TS) == out


def test_tombstone_is_dead_lettered() -> None:
    out = parse_or_dead_letter("lc.orders", None)
    assert isinstance(out, DeadLetter) and "no value" in out.reason


def test_huge_payload_is_cut_and_the_cut_is_said() -> None:
    raw = b"x" * (MAX_KEPT_PAYLOAD * 2)
    out = parse_or_dead_letter("lc.comments", raw)
    assert isinstance(out, DeadLetter)
    assert len(out.payload) == MAX_KEPT_PAYLOAD and "payload cut" in out.reason


@given(raw=st.binary(max_size=500))
def test_any_bytes_give_an_event_or_a_dead_letter(raw: bytes) -> None:
    out = parse_or_dead_letter("lc.orders", raw, key=b"s")
    assert isinstance(out, (OrderAttempt, DeadLetter))
    if isinstance(out, DeadLetter):
        assert out.payload == raw and out.reason


def test_a_huge_key_is_cut_in_the_dead_letter_and_said_so() -> None:
    from streams.dead_letters import MAX_KEPT_KEY, dead_letter_of

    letter = dead_letter_of(b"{}", source_topic="lc.orders", key=b"k" * 900_000, partition=0, offset=1, now_ms=1,
                            error="KeyMismatch", reason="wrong key")
    assert letter.key == b"k" * MAX_KEPT_KEY
    assert "key cut from 900000" in letter.reason
