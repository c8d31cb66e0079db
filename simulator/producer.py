"""The thin I/O shell: send a simulated stream to Kafka, paced, and count what the broker confirmed.

Every message goes to ``settings.topic(spec.name)`` with the topic's key (``TopicSpec.key_of``),
so order attempts and payments of one SKU land on one partition, as the flash-sale worker
requires.  The producer is idempotent with ``acks=all``: a retry inside librdkafka never
duplicates a message, so the ground truth and the topic contents agree exactly.  The Kafka
message timestamp is left to the producer's clock (event time is in the payload): brokers reject
record timestamps too far in the future, and invalid messages carry such timestamps on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from base.kafka import producer_config as base_producer_config
from base.settings import Settings
from schemas import TOPICS, encode
from simulator.pacing import Pacer
from simulator.truth import Outgoing

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message, Producer

#: Preferred compression codecs, best first; the first one this librdkafka build supports is used.
CODECS = ("zstd", "lz4", "none")
#: Report progress (and serve delivery callbacks) every this many messages.
PROGRESS_EVERY = 2000


class ProducerError(RuntimeError):
    """Kafka is not reachable or its topics are missing; the message says what to do."""


@dataclass
class SendReport:
    """What happened on the wire. ``failed`` counts messages not confirmed by the broker (error
    callbacks plus anything still queued when the final flush timed out); ``delivered`` is known
    after that flush."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    compression: str = "none"
    interrupted: bool = False

    @property
    def messages_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "messages_per_s": round(self.messages_per_s, 1),
            "compression": self.compression,
            "interrupted": self.interrupted,
        }


def producer_config(settings: Settings, compression: str) -> dict[str, Any]:
    """The simulator's producer: the project's idempotent ``acks=all`` murmur2 producer
    (:func:`base.kafka.producer_config`) plus this producer's own throughput knobs."""
    return base_producer_config(settings, {
        "compression.type": compression,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": 60_000,
        # Callbacks only for failures: a Python call per delivered message cost ~11 % more CPU
        # per message (measured); after a complete flush, delivered = sent - failed.
        "delivery.report.only.error": True,
        "client.id": "livecommerce-simulator",
    })


def make_producer(settings: Settings) -> tuple[Producer, str]:
    """An idempotent producer with the best available codec, after checking the topics exist."""
    from confluent_kafka import KafkaException, Producer

    last_error: Exception | None = None
    for codec in CODECS:
        try:
            producer = Producer(producer_config(settings, codec))
            break
        except KafkaException as exc:  # codec not built into this librdkafka
            last_error = exc
    else:
        raise ProducerError(f"cannot create a Kafka producer: {last_error}")
    try:
        metadata = producer.list_topics(timeout=10)
    except KafkaException as exc:
        raise ProducerError(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({exc}); start it with `livecommerce up`"
        ) from None
    missing = [settings.topic(n) for n in TOPICS if settings.topic(n) not in metadata.topics]
    if missing:
        raise ProducerError(
            f"topics missing on {settings.kafka_bootstrap}: {', '.join(missing)}; "
            "create them with `livecommerce up` (topic auto-creation is off)"
        )
    return producer, codec


def send(
    items: Iterable[Outgoing],
    settings: Settings,
    pacer: Pacer,
    *,
    producer: Producer | None = None,
    compression: str = "none",
    on_progress: Callable[[Outgoing, SendReport], None] | None = None,
    flush_timeout_s: float = 120.0,
) -> SendReport:
    """Produce every item, paced by ``pacer``; flush; return the counts.

    On KeyboardInterrupt it stops, flushes what was sent and returns with ``interrupted`` set
    (the stream's truth may then count one message more than ``sent``).
    """
    if producer is None:
        producer, compression = make_producer(settings)
    report = SendReport(compression=compression)
    topic_names = {name: settings.topic(name) for name in TOPICS}

    def on_error(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            report.failed += 1
            if len(report.errors) < 10:
                report.errors.append(str(err))

    produce, poll = producer.produce, producer.poll
    start = time.monotonic()
    last: Outgoing | None = None
    try:
        for item in items:
            if not pacer.unlimited:
                wait = pacer.wait_s(item.emit_ms, report.sent, time.monotonic() - start)
                if wait:
                    # poll() serves delivery callbacks while waiting, but returns after the FIRST one:
                    # keep polling until the item is due, or events go out before their own ts.
                    until = time.monotonic() + wait
                    while (left := until - time.monotonic()) > 0:
                        poll(left)
            value = item.raw if item.event is None else encode(item.event)
            while True:
                try:
                    produce(topic_names[item.topic], value, item.key, on_delivery=on_error)
                    break
                except BufferError:  # local queue full: let librdkafka drain it
                    poll(0.05)
            report.sent += 1
            last = item
            if report.sent % PROGRESS_EVERY == 0:
                poll(0)
                if on_progress is not None:
                    on_progress(item, report)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        undelivered = producer.flush(flush_timeout_s)
        report.failed += undelivered
        report.delivered = report.sent - report.failed
        if undelivered and len(report.errors) < 10:
            report.errors.append(f"{undelivered} messages still queued after {flush_timeout_s} s flush")
        report.elapsed_s = time.monotonic() - start
        if on_progress is not None and last is not None:
            on_progress(last, report)
    return report
