"""The scenario generator: every room's events merged into one wire-ordered stream, with late
arrivals, injected invalid messages, and the ground truth recorded as the stream is consumed.

Pure: no clock, no I/O.  The shell (``simulator.producer``) decides how fast to send.

Ordering contract: messages come out sorted by ``emit_ms`` (event time when sent); a late message
has ``emit_ms`` up to ``jitter_ms`` after its ``ts``, so a message's ``ts`` is never more than
``jitter_ms`` below any ``ts`` seen before it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

from schemas import TOPICS, TopicSpec
from schemas.base import Event
from simulator.config import ScenarioConfig
from simulator.invalid import spoil
from simulator.room import Room
from simulator.truth import Outgoing, Truth, TruthRecorder

#: Topics that viewers' apps write to: the ones that get spoiled copies.  Sale config comes from
#: the back office and is kept clean so that every sale opens.
SPOILABLE = frozenset({"comments", "likes", "presence", "orders", "payments"})

_SPEC_OF: dict[type[Event], TopicSpec] = {spec.event: spec for spec in TOPICS.values()}


class Simulation:
    """Iterate once to get the stream; :attr:`truth` counts what has been yielded so far."""

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self.rooms = [Room(config, i) for i in range(config.rooms)]
        self._recorder = TruthRecorder(
            config.seed, config.start_ts, config.end_ts, {room.skus[0].sku_id for room in self.rooms}
        )
        self._wire = random.Random(f"{config.seed}/wire")
        share = config.invalid_share
        self._spoil_rate = share / (1 - share) if share else 0.0
        self._started = False

    @property
    def truth(self) -> Truth:
        return self._recorder.result()

    def __iter__(self) -> Iterator[Outgoing]:
        if self._started:
            raise RuntimeError("a Simulation can be iterated once; build a new one to replay it")
        self._started = True
        cfg = self.config
        late: list[tuple[int, int, Outgoing]] = []  # a heap of messages held back past their second
        seq = 0
        for sec in range(cfg.duration_s):
            horizon = cfg.start_ts + (sec + 1) * 1000  # nothing generated later is emitted before this
            batch: list[Outgoing] = []
            for room in self.rooms:
                for event in room.step(sec):
                    for item in self._wire_items(event, seq):
                        seq += 1
                        if item.emit_ms < horizon:
                            batch.append(item)
                        else:
                            heapq.heappush(late, (item.emit_ms, item.seq, item))
            while late and late[0][0] < horizon:
                batch.append(heapq.heappop(late)[2])
            batch.sort(key=_order)
            for item in batch:
                self._recorder.record(item)
                yield item
        while late:
            item = heapq.heappop(late)[2]
            self._recorder.record(item)
            yield item

    def _delay(self) -> int:
        cfg = self.config
        if not cfg.jitter_ms or not cfg.late_share:
            return 0
        random = self._wire.random
        return int(random() * cfg.jitter_ms) if random() < cfg.late_share else 0

    def _wire_items(self, event: Event, seq: int) -> list[Outgoing]:
        spec = _SPEC_OF[type(event)]
        key = spec.key_of(event)
        ts: int = event.ts  # type: ignore[attr-defined]
        items = [Outgoing(topic=spec.name, key=key, ts=ts, emit_ms=ts + self._delay(), seq=seq, event=event)]
        rate = self._spoil_rate
        if rate and spec.name in SPOILABLE:
            wire = self._wire
            copies = int(rate) + (1 if wire.random() < rate - int(rate) else 0)
            for i in range(copies):
                kind, raw = spoil(wire, event)
                items.append(Outgoing(
                    topic=spec.name, key=key, ts=ts, emit_ms=ts + self._delay(), seq=seq + 1 + i,
                    raw=raw, invalid_kind=kind,
                ))
        return items


def _order(item: Outgoing) -> tuple[int, int]:
    return item.emit_ms, item.seq


def simulate(config: ScenarioConfig) -> Simulation:
    """The stream of ``config``; the same config always yields the same messages."""
    return Simulation(config)
