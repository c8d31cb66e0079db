"""The validation gate every consumer of an input topic goes through.

Decision (pure): raw bytes either decode into the topic's event type or become a
:class:`schemas.DeadLetter` carrying the original bytes, key, source coordinates and the reason.
The caller produces the dead letter to the ``dead-letters`` topic and moves on; nothing crashes.

Ownership: exactly one job dead-letters each input topic, so a bad message appears there once:
the flash-sale worker owns ``orders``, ``payments`` and ``sale-config``; the counters worker owns
``comments``, ``likes`` and ``presence``. Other readers of those topics skip invalid messages and
count them in a metric.
"""

from __future__ import annotations

import time

from schemas import DeadLetter, TopicSpec, ValidationError, decode
from schemas.base import Event
from schemas.codec import DEFAULT_MAX_FUTURE_SKEW_MS, DEFAULT_MAX_MESSAGE_BYTES

#: Dead letters keep at most this many bytes of the original message (the rest is cut, and said so).
MAX_KEPT_PAYLOAD = 64 * 1024


def parse_or_dead_letter(
    spec: TopicSpec,
    raw: bytes | None,
    *,
    source_topic: str,
    key: bytes | None = None,
    partition: int = -1,
    offset: int = -1,
    now_ms: int | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Event | DeadLetter:
    """Decode ``raw`` as ``spec.event`` or return the DeadLetter that explains why not."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        if raw is None:
            raise ValidationError("message has no value (tombstone)")
        return decode(spec.event, raw, max_bytes=max_bytes, now_ms=now, max_future_skew_ms=max_future_skew_ms)
    except ValidationError as exc:
        return dead_letter_of(raw, source_topic=source_topic, key=key, partition=partition, offset=offset,
                              now_ms=now, error="ValidationError", reason=exc.reason)


def dead_letter_of(
    raw: bytes | None, *, source_topic: str, key: bytes | None, partition: int, offset: int, now_ms: int,
    error: str, reason: str,
) -> DeadLetter:
    """The dead letter of a refused message: its bytes (cut to :data:`MAX_KEPT_PAYLOAD`), where it was, why."""
    payload = bytes(raw or b"")
    if len(payload) > MAX_KEPT_PAYLOAD:
        reason = f"{reason} (payload cut from {len(payload)} to {MAX_KEPT_PAYLOAD} bytes)"
        payload = payload[:MAX_KEPT_PAYLOAD]
    return DeadLetter(
        source_topic=source_topic,
        partition=max(partition, -1),
        offset=max(offset, -1),
        key=bytes(key) if key is not None else None,
        payload=payload,
        reason=reason[:2000],
        error=error,
        ts=now_ms,
    )
