"""Kafka in and out of the gateway: the thin I/O edge, no decisions.

- :class:`OutputReader` reads *every* partition of the topics the gateway shows (each instance uses
  ``assign()``, not a shared group, because any client may be connected to any instance) on its own
  thread, decodes with the shared schemas, and hands batches to the event loop.  An event stamped
  further ahead than ``LC_MAX_FUTURE_SKEW_MS`` is refused like any invalid record: a newer ``ts``
  wins in a room's state, so one forged future stamp would otherwise freeze what clients see.  A
  failure of the thread is logged and the consumer rebuilt from where it was; repeated failures
  are fatal (``on_fatal``), never silent.
- :func:`make_producer` is the idempotent producer of viewer actions (built by :mod:`base.kafka`);
  its delivery reports are what the gateway's acks wait for, so a stalled broker turns into an
  error for the client after ``produce_timeout_ms``, not an ack.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from base import kafka
from base.clock import now_ms
from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, ValidationError, decode
from schemas.base import Event
from ws_gateway.supervise import RestartPolicy

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer, TopicPartition

log = get_logger(__name__)

#: Logical topics the gateway shows to clients (``host-actions`` for the host's pins, ``sale-config-applied``
#: for the sale terms the flash-sale job really applied, ``room-console`` for the host's console).
OUTPUT_TOPICS = ("room-counters", "room-counters-live", "stock", "alerts", "scored-comments", "order-results",
                 "host-actions", "sale-config-applied", "room-console")

#: Topics read further back than ``lookback_s`` at start: rare events whose latest state a page needs
#: (the pinned product, the sales and their terms).  With the default lookback a gateway started two
#: minutes after the host pinned showed no pinned product and no sale.
STATE_LOOKBACK_S = {"host-actions": 24 * 3600.0, "sale-config-applied": 24 * 3600.0}

Batch = list[tuple[str, Event]]


def make_producer(settings: Settings, produce_timeout_ms: int = 30_000) -> Producer:
    return kafka.make_producer(settings, {"client.id": "ws-gateway", "message.timeout.ms": produce_timeout_ms})


class OutputReader:
    """A consumer thread over all partitions of :data:`OUTPUT_TOPICS`, starting ``lookback_s`` back."""

    def __init__(
        self, settings: Settings, instance_id: str, lookback_s: float,
        loop: asyncio.AbstractEventLoop, on_batch: Callable[[Batch, int], None],
        on_fatal: Callable[[str, BaseException], None], policy: RestartPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.instance_id = instance_id
        self.lookback_s = lookback_s
        self.loop = loop
        self.on_batch = on_batch
        self.on_fatal = on_fatal
        self.policy = policy or RestartPolicy()
        self.caught_up = asyncio.Event()
        """Set on the loop once the records that existed at start (within the lookback) are applied."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-kafka-reader", daemon=True)
        self._names = {settings.topic(name): name for name in OUTPUT_TOPICS}
        self._positions: dict[tuple[str, int], int] = {}  # next offset to read, kept across restarts
        self.error: str | None = None
        self.failures = 0
        self.last_failure: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures: list[float] = []
        while not self._stop.is_set():
            consumer = kafka.make_consumer(self.settings, f"ws-gateway-{self.instance_id}", {
                "auto.offset.reset": "latest", "fetch.wait.max.ms": 20,
            })
            try:
                behind = self._assign(consumer)
                if behind is None:
                    return  # stopped while the broker was not ready
                self._consume(consumer, behind)
                return
            except RuntimeError as exc:
                if self.loop.is_closed():  # the loop closed under us during shutdown
                    return
                error: BaseException = exc
            except Exception as exc:
                error = exc
            finally:
                consumer.close()
            now = time.monotonic()
            self.failures += 1
            self.last_failure = now
            self.error = f"{type(error).__name__}: {error}"[:500]
            failures, restart = self.policy.after_failure(failures, now)
            if not restart:
                log.error("gateway_reader_gave_up", error=self.error, failures=len(failures))
                self.loop.call_soon_threadsafe(self.on_fatal, "kafka-reader", error)
                return
            log.error("gateway_reader_failed_restarting", error=self.error, exc_info=error)
            self._stop.wait(self.policy.backoff_s)

    def _assign(self, consumer: Consumer) -> dict[tuple[str, int], int] | None:
        """Assign every partition: from the last position after a restart, else ``lookback_s`` back.
        Returns the partitions still behind their end as of now (None if stopped first)."""
        from confluent_kafka import TopicPartition

        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(timeout=5)
                missing = [t for t in self._names if t not in metadata.topics]
                if missing:
                    raise LookupError(f"topics missing: {', '.join(missing)} (run `livecommerce topics`)")
                now = now_ms()
                wanted = [TopicPartition(t, p, now - int(max(self.lookback_s, STATE_LOOKBACK_S.get(name, 0.0)) * 1000))
                          for t, name in self._names.items() for p in metadata.topics[t].partitions]
                start = consumer.offsets_for_times(wanted, timeout=10)
                for tp in start:
                    known = self._positions.get((tp.topic, tp.partition))
                    if known is not None:
                        tp.offset = known
                    elif tp.offset < 0:  # nothing that recent: start at the exact end now, not a lazy "latest"
                        tp.offset = consumer.get_watermark_offsets(tp, timeout=10)[1]
                consumer.assign(start)
                behind: dict[tuple[str, int], int] = {}
                if not self.caught_up.is_set():
                    for tp in start:  # caught up once every partition reached its end as of now
                        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
                        if tp.offset < end:
                            behind[(tp.topic, tp.partition)] = end
                self.error = None
                return behind
            except Exception as exc:  # the broker may still be starting: retry, and say so on /healthz
                self.error = str(exc)
                log.warning("gateway_kafka_not_ready", error=str(exc))
                self._stop.wait(1.0)
        return None

    def _consume(self, consumer: Consumer, behind: dict[tuple[str, int], int]) -> None:
        if not behind:
            self.loop.call_soon_threadsafe(self.caught_up.set)
        while not self._stop.is_set():
            first = consumer.poll(0.1)  # returns at the first record: no batch-fill wait on a quiet stream
            messages = [] if first is None else [first, *consumer.consume(num_messages=999, timeout=0)]
            batch: Batch = []
            invalid = 0
            now = now_ms()
            for msg in messages:
                if msg.error() is not None:
                    continue
                topic = msg.topic() or ""
                self._positions[(topic, msg.partition() or 0)] = (msg.offset() or 0) + 1
                name = self._names.get(topic)
                if name is None:
                    continue
                try:
                    batch.append((name, decode(TOPICS[name].event, msg.value() or b"", max_bytes=1 << 22,
                                               now_ms=now, max_future_skew_ms=self.settings.max_future_skew_ms)))
                except ValidationError:
                    invalid += 1  # the producing worker owns dead-lettering of its own output
            if batch or invalid:
                self.loop.call_soon_threadsafe(self.on_batch, batch, invalid)
            if behind:  # position, not message offsets: transaction markers occupy offsets too
                for tp in consumer.position([_tp(t, p) for t, p in behind]):
                    if tp.offset >= behind[(tp.topic, tp.partition)]:
                        del behind[(tp.topic, tp.partition)]
                if not behind:  # scheduled after the batch, so healthz turns ok once it is applied
                    self.loop.call_soon_threadsafe(self.caught_up.set)


def _tp(topic: str, partition: int) -> TopicPartition:
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, partition)
