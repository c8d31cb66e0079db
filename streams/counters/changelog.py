"""The counters' changelog topic: created once, read back partition by partition after a (re)start.

Why our own changelog instead of Faust tables: the worker writes the state of each changed key
once per transaction (not once per event), in the same Kafka transaction as the room-counters
snapshots, the dead letters and the input offsets.  A ``kill -9`` therefore loses nothing and
doubles nothing: the next owner of a partition reads this topic (``read_committed``) up to its
last stable offset and resumes from the offsets committed with it.  The topic is compacted, so its
size follows the number of rooms and viewers, not the number of events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from base.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer

CHANGELOG = "counters-changelog"


def changelog_topic(settings: Settings) -> str:
    return settings.topic(CHANGELOG)


def ensure_changelog(settings: Settings, timeout: float = 30.0) -> str:
    """Create the compacted changelog topic (same partition count as the inputs) if it is missing."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    name = changelog_topic(settings)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=timeout).topics
    if name in existing and existing[name].error is None:
        count = len(existing[name].partitions)
        if count != settings.partitions:
            raise RuntimeError(f"{name} has {count} partitions, the inputs have {settings.partitions}")
        return name
    topic = NewTopic(
        name, num_partitions=settings.partitions, replication_factor=settings.replication_factor,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
    )
    for future in admin.create_topics([topic], operation_timeout=timeout).values():
        try:
            future.result()
        except Exception as exc:  # already created by the other worker a moment ago
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(name, timeout=timeout).topics.get(name)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            return name
        time.sleep(0.1)
    raise RuntimeError(f"{name} has no leader after {timeout} s")


def read_partition(
    settings: Settings, partition: int, timeout: float = 60.0, consumer: Consumer | None = None
) -> list[tuple[bytes, bytes | None]]:
    """Every committed (key, value) record of one changelog partition, in offset order."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

    own = consumer is None
    if consumer is None:
        consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "counters-restore-unused",  # never subscribes nor commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 1,
            "log_level": 3,
        })
    name = changelog_topic(settings)
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=timeout)
        records: list[tuple[bytes, bytes | None]] = []
        if high <= 0:
            return records
        consumer.assign([TopicPartition(name, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = False
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done = True
                        continue
                    raise KafkaException(error)
                key = msg.key()
                if key is not None:
                    records.append((key, msg.value()))
                if (msg.offset() or 0) + 1 >= high:
                    done = True
            if done:
                return records
        raise TimeoutError(f"changelog {name}[{partition}] not read to offset {high} in {timeout} s")
    finally:
        if own:
            consumer.close()
        else:
            consumer.unassign()
