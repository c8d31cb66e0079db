"""Kafka in and out of the gateway: the thin I/O edge, no decisions.

- :class:`OutputReader` reads *every* partition of the topics the gateway shows (each instance uses
  ``assign()``, not a shared group, because any client may be connected to any instance) on its own
  thread, decodes with the shared schemas, and hands batches to the event loop.
- :func:`make_producer` is the idempotent (``enable.idempotence``, ``acks=all``) producer of viewer
  actions; the event loop polls it so delivery callbacks run on the loop thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, ValidationError, decode
from schemas.base import Event

if TYPE_CHECKING:
    from confluent_kafka import Producer

log = get_logger(__name__)

#: Logical topics the gateway shows to clients.
OUTPUT_TOPICS = ("room-counters", "stock", "alerts", "scored-comments", "order-results")

Batch = list[tuple[str, Event]]


def make_producer(settings: Settings) -> Producer:
    from confluent_kafka import Producer

    return Producer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # Kafka's default (Java, aiokafka) partitioner: the workers assume murmur2 placement of keys.
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "client.id": "ws-gateway",
        "log_level": 3,
    })


class OutputReader:
    """A consumer thread over all partitions of :data:`OUTPUT_TOPICS`, starting ``lookback_s`` back."""

    def __init__(
        self, settings: Settings, instance_id: str, lookback_s: float,
        loop: asyncio.AbstractEventLoop, on_batch: Callable[[Batch, int], None],
    ) -> None:
        self.settings = settings
        self.instance_id = instance_id
        self.lookback_s = lookback_s
        self.loop = loop
        self.on_batch = on_batch
        self.assigned = threading.Event()
        self.caught_up = asyncio.Event()
        """Set on the loop once the records that existed at start (within the lookback) are applied."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-kafka-reader", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": f"ws-gateway-{self.instance_id}",
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            "fetch.queue.backoff.ms": 1,
            "fetch.wait.max.ms": 20,
            "log_level": 3,
        })
        names = {self.settings.topic(name): name for name in OUTPUT_TOPICS}
        behind: dict[tuple[str, int], int] = {}
        try:
            while not self._stop.is_set():
                try:
                    metadata = consumer.list_topics(timeout=5)
                    missing = [t for t in names if t not in metadata.topics]
                    if missing:
                        raise RuntimeError(f"topics missing: {', '.join(missing)} (run `livecommerce topics`)")
                    since = int((time.time() - self.lookback_s) * 1000)
                    wanted = [TopicPartition(t, p, since) for t in names for p in metadata.topics[t].partitions]
                    start = consumer.offsets_for_times(wanted, timeout=10)
                    for tp in start:  # nothing that recent: start at the exact end now, not a lazy "latest"
                        if tp.offset < 0:
                            tp.offset = consumer.get_watermark_offsets(tp, timeout=10)[1]
                    consumer.assign(start)
                    for tp in start:  # caught up once every partition reached its end as of now
                        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
                        if tp.offset < end:
                            behind[(tp.topic, tp.partition)] = end
                    break
                except Exception as exc:  # the broker may still be starting: retry, and say so on /healthz
                    self.error = str(exc)
                    log.warning("gateway_kafka_not_ready", error=str(exc))
                    self._stop.wait(1.0)
            self.error = None
            self.assigned.set()
            if not behind:
                self.loop.call_soon_threadsafe(self.caught_up.set)
            while not self._stop.is_set():
                first = consumer.poll(0.1)  # returns at the first record: no batch-fill wait on a quiet stream
                messages = [] if first is None else [first, *consumer.consume(num_messages=999, timeout=0)]
                batch: Batch = []
                invalid = 0
                for msg in messages:
                    if msg.error() is not None:
                        continue
                    name = names.get(msg.topic() or "")
                    if name is None:
                        continue
                    try:
                        batch.append((name, decode(TOPICS[name].event, msg.value() or b"", max_bytes=1 << 22)))
                    except ValidationError:
                        invalid += 1  # the producing worker owns dead-lettering of its own output
                if batch or invalid:
                    self.loop.call_soon_threadsafe(self.on_batch, batch, invalid)
                if behind:  # position, not message offsets: transaction markers occupy offsets too
                    for tp in consumer.position([TopicPartition(t, p) for t, p in behind]):
                        if tp.offset >= behind[(tp.topic, tp.partition)]:
                            del behind[(tp.topic, tp.partition)]
                    if not behind:  # scheduled after the batch, so healthz turns ok once it is applied
                        self.loop.call_soon_threadsafe(self.caught_up.set)
        except RuntimeError:  # the loop closed under us during shutdown
            pass
        finally:
            consumer.close()
