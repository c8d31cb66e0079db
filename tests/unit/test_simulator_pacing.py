"""The simulator never sends an event before its time at real speed.

librdkafka's ``poll(timeout)`` returns as soon as it served one delivery report, so a pacer that
slept with one ``poll(wait)`` sent events seconds before their ``ts`` whenever reports kept
arriving; the gate (2 s of allowed skew) then dead-lettered them.  The producer stand-in below
returns from ``poll`` at once, as librdkafka does while reports are pending."""

from __future__ import annotations

import time

from base.settings import Settings
from schemas import Comment
from simulator.pacing import Pacer
from simulator.producer import send
from simulator.truth import Outgoing


class EagerPoller:
    """Records when each message was produced; ``poll`` returns at once (a report was pending)."""

    def __init__(self) -> None:
        self.sent_at: list[float] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: object = None) -> None:
        self.sent_at.append(time.monotonic())

    def poll(self, timeout: float = 0) -> int:
        return 1

    def flush(self, timeout: float = 0) -> int:
        return 0


def test_every_item_goes_out_no_earlier_than_its_emit_time() -> None:
    start_ms = int(time.time() * 1000)
    items = [
        Outgoing(topic="comments", key=b"r", ts=start_ms + i * 100, emit_ms=start_ms + i * 100, seq=i,
                 event=Comment(event_id=f"c{i}", room_id="r", user_id="u", text="hi", ts=start_ms + i * 100))
        for i in range(6)
    ]
    producer = EagerPoller()
    began = time.monotonic()
    send(items, Settings.from_env({}), Pacer(start_ms=start_ms, speed=1.0), producer=producer)  # type: ignore[arg-type]
    offsets = [t - began for t in producer.sent_at]
    for i, offset in enumerate(offsets):
        assert offset >= i * 0.1 - 0.005, f"item {i} sent {i * 0.1 - offset:.3f} s early"
