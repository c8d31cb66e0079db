"""A job's changelog: a compacted topic whose partition *p* holds the state of input partition *p*.

Why our own changelog instead of Faust tables: a task writes each changed key once per commit (not
once per event), inside the same Kafka transaction as its outputs and its input offsets, so a
``kill -9`` neither loses nor doubles anything.  The next owner of a partition reads it back
(``read_committed``, up to the last stable offset) before it processes a single input.

The topic must have exactly as many partitions as the inputs (partition *p* of the changelog is
partition *p*'s state); it is created from the inputs' real partition count, by the first worker or
by ``livecommerce topics``, and checked at every start.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from base.kafka import consumer_config, make_admin
from base.settings import Settings
from streams.runtime.job import Record

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

#: Compaction keeps the newest record per key; the lag keeps a just-written value readable by a restore.
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


class PartitionCountError(RuntimeError):
    """Inputs or changelog disagree on their partition count: the single-writer rule would break."""


def input_partition_count(admin: AdminClient, topics: list[str], timeout: float = 30.0) -> int:
    """The one partition count the job's input topics share; raises if they differ or are missing.

    Co-partitioning is what makes one task the single writer of a key: with different counts a
    SKU's orders and its sale config (or a room's comments and its likes) would land in different tasks.
    """
    metadata = admin.list_topics(timeout=timeout)
    counts = {t: len(metadata.topics[t].partitions) for t in topics
              if t in metadata.topics and metadata.topics[t].error is None}
    if len(counts) != len(topics) or len(set(counts.values())) != 1:
        missing = sorted(set(topics) - set(counts))
        raise PartitionCountError(
            f"the inputs must exist with one partition count (co-partitioned by key): {counts}"
            + (f", missing {missing}" if missing else "") + "; create them with `livecommerce topics`"
        )
    return next(iter(counts.values()))


def ensure_changelog(
    settings: Settings, topic: str, partitions: int, admin: AdminClient | None = None, timeout: float = 30.0
) -> str:
    """Create the compacted changelog with ``partitions`` partitions, or check the existing one."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl

    admin = admin or make_admin(settings)
    existing = admin.list_topics(timeout=timeout).topics
    if topic not in existing or existing[topic].error is not None:
        new = NewTopic(topic, num_partitions=partitions, replication_factor=settings.replication_factor,
                       config=dict(CHANGELOG_CONFIG))
        for future in admin.create_topics([new], operation_timeout=timeout).values():
            try:
                future.result()
            except KafkaException as exc:  # another worker created it a moment ago
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions and all(
            p.leader >= 0 for p in meta.partitions.values()
        ):
            if len(meta.partitions) != partitions:
                raise PartitionCountError(
                    f"{topic} has {len(meta.partitions)} partitions, the inputs have {partitions}: "
                    "delete the changelog only if the state may be rebuilt from scratch"
                )
            return topic
        time.sleep(0.1)
    raise TimeoutError(f"{topic} has no leader after {timeout} s")


def restore_consumer(settings: Settings, job: str) -> Consumer:
    """A ``read_committed`` consumer that only ``assign()``s: it stops at the last stable offset."""
    from confluent_kafka import Consumer

    return Consumer(consumer_config(settings, f"{settings.topic_prefix}{job}-restore", {
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }))


def read_partition(consumer: Consumer, topic: str, partition: int, timeout: float = 120.0) -> list[Record]:
    """Every committed (key, value) of one changelog partition, in offset order.

    ``consumer`` comes from :func:`restore_consumer`: the end it stops at is the last stable offset,
    so the records of an aborted (killed) transaction are never restored.
    """
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

    deadline = time.monotonic() + timeout
    high = _end_offset(consumer, TopicPartition(topic, partition), deadline)
    records: list[Record] = []
    if high <= 0:
        return records
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return records
                    raise KafkaException(error)
                key = msg.key()
                if key is not None:
                    records.append((key, msg.value()))
        raise TimeoutError(f"changelog {topic}[{partition}] not read to its end in {timeout} s")
    finally:
        consumer.unassign()


#: One ask for a partition's end waits at most this long before the leader is looked up again.
END_OFFSET_ATTEMPT_S = 10.0


def _end_offset(consumer: Consumer, tp: TopicPartition, deadline: float) -> int:
    """The partition's high watermark, asked of its leader in short attempts until ``deadline``.

    A restore consumer sits idle between rebalances, so the leader it remembers may be a broker that
    has died since: one long ask would wait for that broker until its timeout (seen: 120 s after a
    SIGKILL).  After a failed attempt the topic's metadata is fetched again, so the next attempt asks
    the new leader."""
    from confluent_kafka import KafkaException

    while True:
        left = deadline - time.monotonic()
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=max(min(END_OFFSET_ATTEMPT_S, left), 0.1),
                                                      cached=False)[1])
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
        with contextlib.suppress(KafkaException):  # the next attempt (or the deadline) decides
            consumer.list_topics(tp.topic, timeout=max(min(END_OFFSET_ATTEMPT_S, deadline - time.monotonic()), 0.1))
        time.sleep(0.2)
