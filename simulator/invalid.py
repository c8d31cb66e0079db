"""Deliberately broken messages, spoiled from a valid event, to exercise the dead-letter path.

Each kind is a mistake a real client makes: a truncated write, a wrong encoding, a string where a
number belongs, a missing or unknown field, text pasted ten times over, a clock set to the future.
Every message made here must fail :func:`schemas.decode` for its topic's event type, whatever the
``LC_MAX_MESSAGE_BYTES`` setting, at any wall-clock time before 2096 (a unit test checks it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

import msgspec

from schemas import Comment, encode
from schemas.base import Event

#: An event timestamp of 2096: in the schema's range, but always beyond the allowed clock skew.
FUTURE_TS: Final = 4_000_000_000_000

_json = msgspec.json.Encoder()


def _fields(event: Event) -> dict[str, Any]:
    return msgspec.json.decode(encode(event))  # type: ignore[no-any-return]


def _bad_json(rng: random.Random, event: Event) -> bytes:
    raw = encode(event)
    # Any proper prefix of a JSON object is unbalanced, hence never valid JSON.
    return raw[: rng.randint(1, len(raw) - 1)]


def _bad_utf8(rng: random.Random, event: Event) -> bytes:
    return b"\xff\xfe" + encode(event)


def _wrong_shape(rng: random.Random, event: Event) -> bytes:
    return _json.encode(list(_fields(event).values()))


def _wrong_type(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    name, bad = rng.choice([("ts", "2026-01-01 20:00"), ("room_id", 12345), ("user_id", ["u", 1])])
    data[name] = bad
    return _json.encode(data)


def _out_of_range(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    choices: list[tuple[str, Any]] = [("ts", 1000), ("ts", -1)]
    if "quantity" in data:
        choices += [("quantity", 0), ("quantity", 101)]
    if "count" in data:
        choices += [("count", 0), ("count", -5)]
    name, bad = rng.choice(choices)
    data[name] = bad
    return _json.encode(data)


def _missing_field(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    del data[rng.choice(["room_id", "ts"])]
    return _json.encode(data)


def _unknown_field(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    data[rng.choice(["coupon", "device", "x_debug"])] = "v2-client"
    return _json.encode(data)


def _too_long(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    if isinstance(event, Comment):
        data["text"] = rng.choice(["好", "6", "🔥", "ha"]) * rng.randint(501, 700)
    else:
        data["user_id"] = "u" * rng.randint(65, 200)
    return _json.encode(data)


def _oversize(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    field = "text" if isinstance(event, Comment) else "user_id"
    data[field] = "刷屏" * rng.randint(9000, 10000)  # ~55 KB: over any sane size limit and the field limit
    return _json.encode(data)


def _future_ts(rng: random.Random, event: Event) -> bytes:
    data = _fields(event)
    data["ts"] = FUTURE_TS + rng.randint(0, 10**9)
    return _json.encode(data)


SPOILERS: Final[dict[str, Callable[[random.Random, Event], bytes]]] = {
    "bad_json": _bad_json,
    "bad_utf8": _bad_utf8,
    "wrong_shape": _wrong_shape,
    "wrong_type": _wrong_type,
    "out_of_range": _out_of_range,
    "missing_field": _missing_field,
    "unknown_field": _unknown_field,
    "too_long": _too_long,
    "oversize": _oversize,
    "future_ts": _future_ts,
}
_KINDS: Final = tuple(SPOILERS)


def spoil(rng: random.Random, event: Event) -> tuple[str, bytes]:
    """A random kind of breakage applied to ``event``: (kind, raw bytes)."""
    kind = rng.choice(_KINDS)
    return kind, SPOILERS[kind](rng, event)
