"""The dead letter of a refused message: its original bytes, key, source coordinates and the reason.

The runtime's gate (:mod:`streams.runtime.gate`) decides what is refused; the runner produces the
dead letter to the ``dead-letters`` topic and moves on; nothing crashes.

Ownership: exactly one job dead-letters each input topic, so a bad message appears there once:
the flash-sale worker owns ``orders``, ``payments`` and ``sale-config``; the counters worker owns
``comments``, ``likes`` and ``presence``. Other readers of those topics skip invalid messages and
count them in a metric.
"""

from __future__ import annotations

from schemas import DeadLetter

#: Dead letters keep at most this many bytes of the original message (the rest is cut, and said so).
MAX_KEPT_PAYLOAD = 64 * 1024
#: ... and of its key, which the input size limit does not cover (a 900 KB key made an unproducible dead letter).
MAX_KEPT_KEY = 1024


def dead_letter_of(
    raw: bytes | None, *, source_topic: str, key: bytes | None, partition: int, offset: int, now_ms: int,
    error: str, reason: str,
) -> DeadLetter:
    """The dead letter of a refused message: its bytes (cut to :data:`MAX_KEPT_PAYLOAD`), where it was, why."""
    payload = bytes(raw or b"")
    if len(payload) > MAX_KEPT_PAYLOAD:
        reason = f"{reason} (payload cut from {len(payload)} to {MAX_KEPT_PAYLOAD} bytes)"
        payload = payload[:MAX_KEPT_PAYLOAD]
    if key is not None and len(key) > MAX_KEPT_KEY:  # a key is not size-checked by the input limit
        reason = f"{reason} (key cut from {len(key)} to {MAX_KEPT_KEY} bytes)"
        key = key[:MAX_KEPT_KEY]
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
