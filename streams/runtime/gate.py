"""The gate every input message passes before a task sees it: pure decisions, no Kafka.

Three questions, in this order, the same for every job (they used to be answered differently by
each job's loop):

1. **Stale?**  A poll batch can carry messages fetched before a rebalance.  Those of partitions we
   no longer own, or below the position our restored state starts from, were (or will be) applied
   by the state's owner: skip them (:class:`Positions`).
2. **Valid?**  Size, typed decode with the schema's rules, a timestamp no further ahead than the
   allowed skew.  An invalid message of an *owned* input becomes a dead letter with its reason; one
   of another job's output topic is only counted (that job validated it).
3. **Home?**  Partitioning is the lock: the message key must be the body's key field (room_id or
   sku_id), and that key must hash (Kafka's murmur2) to the partition the message arrived on.  A
   message that fails either would give its room or SKU a second writer, so it is refused: a dead
   letter for owned inputs, a counted skip for the others.  Every message is checked, null keys
   included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from schemas import INPUT_TOPICS, TOPICS, DeadLetter, ValidationError
from schemas.base import Event
from schemas.codec import check
from streams.dead_letters import dead_letter_of
from streams.partitioning import default_partition

#: Dead-letter error names of the gate's refusals (the ``error`` field operators filter on).
MISROUTED = "Misrouted"
KEY_MISMATCH = "KeyMismatch"


class Refused(NamedTuple):
    """The gate's refusal: the dead letter to produce (distinct from a DeadLetter *event* read from
    the dead-letters topic, which the sink admits and stores)."""

    letter: DeadLetter


class Positions:
    """Next offset to apply per owned (topic, partition); the stale-offset skip.

    ``-1`` means "nothing committed yet: take whatever comes first".  A partition we do not own has
    no entry, and its messages are stale by definition.
    """

    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}

    def own(self, topic: str, partition: int, next_offset: int) -> None:
        self.next[(topic, partition)] = next_offset if next_offset >= 0 else -1

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        self.next = {tp: o for tp, o in self.next.items() if tp[1] not in gone}

    def admit(self, topic: str, partition: int, offset: int) -> bool:
        """True (and the position moves past it) if the message at ``offset`` is next to apply."""
        key = (topic, partition)
        expected = self.next.get(key)
        if expected is None or offset < expected:
            return False
        self.next[key] = offset + 1
        return True

    def committable(self) -> list[tuple[str, int, int]]:
        """(topic, partition, next offset) of every owned partition that has a position."""
        return [(t, p, o) for (t, p), o in self.next.items() if o >= 0]


#: Our own jobs' outputs can be larger than an input (a dead letter carries up to 64 KiB of original
#: bytes, JSON-escaped); inputs keep the limit set for the outside world.
OUTPUT_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Input:
    logical: str
    owned: bool
    key_field: str
    max_bytes: int
    decode: Callable[[bytes], Event]


class Gate:
    """Validation and routing decisions for one job's inputs (topics by their full names)."""

    def __init__(
        self,
        inputs: Mapping[str, str],
        owned: Iterable[str],
        *,
        partitions: int,
        max_bytes: int,
        max_future_skew_ms: int,
    ) -> None:
        """``inputs`` maps full topic names to logical names; ``owned`` holds logical names."""
        owned = set(owned)
        self.inputs = {
            full: _Input(name, name in owned, TOPICS[name].key_field,
                         max_bytes if name in INPUT_TOPICS else OUTPUT_MAX_BYTES,
                         msgspec.json.Decoder(TOPICS[name].event).decode)
            for full, name in inputs.items()
        }
        self.partitions = partitions
        self.max_bytes = max_bytes
        self.max_future_skew_ms = max_future_skew_ms
        self.stats: Counter[str] = Counter()
        self._keys: dict[bytes, tuple[str, int]] = {}

    def check(
        self, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes | None, wall_ms: int,
        arrival_ms: int | None = None,
    ) -> Event | Refused | None:
        """The event to apply, the refusal to dead-letter, or None to skip (counted in :attr:`stats`).

        ``arrival_ms`` is when the message reached Kafka (the broker's LogAppendTime), if known: the
        future-skew rule is measured against it, so a message refused live is refused in a backlog
        and in a replay too, and the sink decides exactly as the owning job did.  Without it (a topic
        with producer timestamps) the rule falls back to the reader's clock ``wall_ms``.

        The common case (valid, keyed right, at home) takes a fast path of the same three rules;
        anything else goes through :func:`schemas.codec.check` for the reason it is refused."""
        rule = self.inputs[topic]
        now = wall_ms if arrival_ms is None else arrival_ms
        if raw is not None and len(raw) <= rule.max_bytes:
            try:
                event = rule.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError, RecursionError):
                event = None
            if event is not None and event.ts <= now + self.max_future_skew_ms:  # type: ignore[attr-defined]
                home = self._keys.get(key) if key is not None else None
                if home is None and key is not None:
                    home = self._learn(key)
                if home is not None and home[1] == partition and getattr(event, rule.key_field) == home[0]:
                    return event
        return self._diagnose(rule, topic, partition, offset, key, raw, wall_ms, now)

    def _learn(self, key: bytes) -> tuple[str, int]:
        """(the key as text, its murmur2 home partition), cached: keys are rooms and SKUs."""
        if len(self._keys) > 1_000_000:  # bounded: an attacker picks the keys
            self._keys.clear()
        home = (key.decode("utf-8", errors="surrogateescape"), default_partition(key, self.partitions))
        self._keys[key] = home
        return home

    def _diagnose(
        self, rule: _Input, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes | None,
        wall_ms: int, now: int,
    ) -> Event | Refused | None:
        """The slow path: which rule refuses this message, and why (or the event, if none does)."""
        try:
            if raw is None:
                raise ValidationError("message has no value (tombstone)")
            event = check(rule.decode, raw, rule.max_bytes, now, self.max_future_skew_ms)
        except ValidationError as exc:
            return self._refuse(rule, topic, partition, offset, key, raw, wall_ms, "ValidationError", exc.reason)
        body_key = str(getattr(event, rule.key_field)).encode()
        if key != body_key:
            return self._refuse(
                rule, topic, partition, offset, key, raw, wall_ms, KEY_MISMATCH,
                f"message key {key!r} is not the event's {rule.key_field} {body_key!r}: "
                f"produce keyed by {rule.key_field}",
            )
        home = (self._keys.get(body_key) or self._learn(body_key))[1]
        if home != partition:
            return self._refuse(
                rule, topic, partition, offset, key, raw, wall_ms, MISROUTED,
                f"{rule.key_field} {body_key.decode(errors='replace')!r} belongs to partition {home}, not "
                f"{partition}: produce with Kafka's default murmur2 partitioner "
                "(librdkafka: partitioner=murmur2_random)",
            )
        return event

    def _refuse(
        self, rule: _Input, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes | None,
        wall_ms: int, error: str, reason: str,
    ) -> Refused | None:
        if not rule.owned:
            self.stats[f"skipped_{error}"] += 1
            return None
        self.stats[f"dead_{error}"] += 1
        return Refused(dead_letter_of(
            raw, source_topic=topic, key=key, partition=partition, offset=offset, now_ms=wall_ms,
            error=error, reason=reason,
        ))

