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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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


class KafkaMessage(Protocol):
    """What the gate reads of a consumed message (confluent-kafka's ``Message``; tests pass their own)."""

    def error(self) -> Any: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


#: Where an admitted event came from: (topic, partition, offset, key, raw value).
Source = tuple[str, int, int, bytes | None, bytes | None]


@dataclass
class Sorted:
    """One poll batch after the gate: the events each partition's task applies, in offset order."""

    by_partition: dict[int, list[Event]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    #: ``id(event)`` -> its source, for the job's traced event types (their later refusals by the
    #: task are dead-lettered with the original bytes).
    sources: dict[int, Source] = field(default_factory=dict)
    #: Any message's offset is now ours to commit (even one the gate skipped or refused).
    admitted: bool = False
    stale: int = 0
    #: A consumer error other than end-of-partition: the batch must not be applied.
    error: Any = None


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

    def sort(
        self, messages: Sequence[KafkaMessage], positions: Positions, wall_ms: int, *, eof_code: int,
        log_append_time: int, traced: frozenset[type] = frozenset(), at_end: set[tuple[str, int]] | None = None,
    ) -> Sorted:
        """A whole poll batch through the three questions (stale? valid? home?), in one loop.

        The same rules as :meth:`check`, message by message: the common case (next offset, valid,
        keyed right, at home) is decided inline, without a call per message, because this loop is the
        hottest code of every job; anything else goes through :meth:`check`'s slow path for its reason.
        ``positions`` move past every admitted offset.  ``at_end`` (the sink's end-of-partition
        tracking) gains a partition at its end-of-partition event (``eof_code``) and loses it at its
        next admitted message.  A message timestamp of type ``log_append_time`` is the broker's arrival
        time, against which the future-skew rule is measured (see :meth:`check`)."""
        out = Sorted()
        by_part, sources, inputs, keys = out.by_partition, out.sources, self.inputs, self._keys
        expected_at = positions.next
        skew = self.max_future_skew_ms
        stale = 0
        for msg in messages:
            error = msg.error()
            topic, p, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and p is not None and offset is not None
            if error is not None:
                if error.code() == eof_code:
                    if at_end is not None:
                        at_end.add((topic, p))
                    continue
                out.error = error
                return out
            tp = (topic, p)
            expected = expected_at.get(tp)  # Positions.admit, inlined
            if expected is None or offset < expected:
                stale += 1
                continue
            expected_at[tp] = offset + 1
            out.admitted = True
            if at_end:
                at_end.discard(tp)
            key, raw = msg.key(), msg.value()
            stamp_type, stamp = msg.timestamp()
            arrival = stamp if stamp_type == log_append_time else None
            rule = inputs[topic]
            event: Any = None
            if raw is not None and len(raw) <= rule.max_bytes:  # check()'s fast path, inlined
                try:
                    event = rule.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError, RecursionError):
                    event = None
                if event is not None:
                    home = keys.get(key) if key is not None else None
                    if home is None and key is not None:
                        home = self._learn(key)
                    if (event.ts > (wall_ms if arrival is None else arrival) + skew or home is None
                            or home[1] != p or getattr(event, rule.key_field) != home[0]):
                        event = None
            if event is None:
                verdict = self._diagnose(rule, topic, p, offset, key, raw, wall_ms,
                                         wall_ms if arrival is None else arrival)
                if verdict is None:
                    continue
                if isinstance(verdict, Refused):
                    out.dead.append(verdict.letter)
                    continue
                event = verdict
            batch = by_part.get(p)
            if batch is None:
                batch = by_part[p] = []
            batch.append(event)
            if traced and type(event) in traced:
                sources[id(event)] = (topic, p, offset, key, raw)
        out.stale = stale
        return out

    def check(
        self, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes | None, wall_ms: int,
        arrival_ms: int | None = None,
    ) -> Event | Refused | None:
        """The event to apply, the refusal to dead-letter, or None to skip (counted in :attr:`stats`).

        ``arrival_ms`` is when the message reached Kafka (the broker's LogAppendTime), if known: the
        future-skew rule is measured against it, so a message refused live is refused in a backlog
        and in a replay too, and the sink decides exactly as the owning job did.  Without it (a topic
        with producer timestamps) the rule falls back to the reader's clock ``wall_ms``.

        This is the reference decision for one message; :meth:`sort` makes the same decisions for a
        whole batch with the common case inlined (a property test holds the two equal)."""
        rule = self.inputs[topic]
        now = wall_ms if arrival_ms is None else arrival_ms
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
        """Every rule in order: which one refuses this message, and why (or the event, if none does)."""
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

