"""Every Kafka client of the project is built here, so its settings are decided in one place.

Why one factory: the partitioner must be Kafka's default murmur2 in every producer (the jobs assume
that a key's partition is what the Java client and aiokafka would pick), producers must be
idempotent with ``acks=all`` (a broker's death must not lose or double an acknowledged event), and
librdkafka's defaults idle a fast consumer (``fetch.queue.backoff.ms``).  Callers add only what is
theirs: a group id, a transactional id, a client id, latency knobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from base.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

#: librdkafka's name for Kafka's default (Java, aiokafka) partitioner: murmur2 of the key.
PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent, ``acks=all``, murmur2 producer's settings, overridden by ``extra``."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": PARTITIONER,
        "linger.ms": 5,
        "log_level": 3,
    }
    config.update(extra or {})
    return config


def consumer_config(settings: Settings, group_id: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A consumer's settings: manual commits, earliest reset, no fetch back-off, overridden by ``extra``."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 1,  # librdkafka's 1000 ms default idles a fast loop ~85% of the time
        "log_level": 3,
    }
    config.update(extra or {})
    return config


def make_producer(settings: Settings, extra: Mapping[str, Any] | None = None) -> Producer:
    from confluent_kafka import Producer

    return Producer(producer_config(settings, extra))


def make_consumer(settings: Settings, group_id: str, extra: Mapping[str, Any] | None = None) -> Consumer:
    from confluent_kafka import Consumer

    return Consumer(consumer_config(settings, group_id, extra))


def make_admin(settings: Settings, bootstrap: str | None = None) -> AdminClient:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap or settings.kafka_bootstrap, "log_level": 3})

