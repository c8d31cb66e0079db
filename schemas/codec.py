"""Bytes in, typed events out, or a :class:`ValidationError` that says why; nothing else escapes.

The decoders are built once per type (msgspec's typed decoders validate while parsing).  Checks
that depend on the moment (a timestamp from the future) take ``now_ms`` so that they stay pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import msgspec

from schemas.base import Event

E = TypeVar("E", bound=Event)

DEFAULT_MAX_MESSAGE_BYTES = 16_384
#: Live events are stamped now (the gateway stamps server time): seconds of clock skew, not minutes.
DEFAULT_MAX_FUTURE_SKEW_MS = 2_000

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Event], msgspec.json.Decoder[Event]] = {}


class ValidationError(ValueError):
    """An event was rejected. ``reason`` is a short human sentence; ``path`` the offending field, if known."""

    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def _decoder(event_type: type[E]) -> msgspec.json.Decoder[E]:
    dec = _decoders.get(event_type)
    if dec is None:
        dec = _decoders[event_type] = msgspec.json.Decoder(event_type)
    return dec  # type: ignore[return-value]


def decode(
    event_type: type[E],
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    now_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> E:
    """Decode and validate one JSON message of ``event_type``.

    Raises ValidationError for anything that is not a valid event: wrong size, bad UTF-8 or JSON,
    wrong or missing fields, out-of-range values, a timestamp too far in the future.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ValidationError(f"message must be bytes, got {type(raw).__name__}")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return check(_decoder(event_type).decode, raw, max_bytes, now, max_future_skew_ms)


def check(
    decode_one: Callable[[bytes], E], raw: bytes, max_bytes: int, now_ms: int, max_future_skew_ms: int
) -> E:
    """The gate's rules with a decoder the caller keeps (the stream runtime's hot path calls this).

    One definition of what a valid message is: at most ``max_bytes``, decodes into its type with the
    type's own checks, and is stamped no more than ``max_future_skew_ms`` after ``now_ms``.
    """
    if len(raw) > max_bytes:
        raise ValidationError(f"message is {len(raw)} bytes, at most {max_bytes} bytes allowed")
    try:
        event = decode_one(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else None
        raise ValidationError(text, path) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # from __post_init__ checks
        raise ValidationError(str(exc) or type(exc).__name__) from None
    ts = getattr(event, "ts", None)
    if ts is not None and ts > now_ms + max_future_skew_ms:
        raise ValidationError(
            f"ts {ts} is {ts - now_ms} ms in the future, at most {max_future_skew_ms} allowed", "$.ts"
        )
    return event


def encode(event: Event) -> bytes:
    """Canonical JSON bytes of an event (includes its ``type`` tag)."""
    return _encoder.encode(event)


def validate(event: E) -> E:
    """Re-check an event built in Python (constructors do not check ranges); returns an equal event."""
    return decode(type(event), encode(event), max_bytes=1 << 30, now_ms=2**62)
