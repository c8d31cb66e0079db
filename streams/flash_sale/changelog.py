"""The flash-sale state changelog: a compacted topic, partition *p* holding the state of input partition *p*.

Why our own changelog instead of a Faust table: the worker writes each changed record once per
batch (not once per event), inside the same Kafka transaction as the order results and the input
offsets.  Besides the :mod:`streams.flash_sale.state` records, every transaction writes the key
``o|`` with the next input offset of each input topic, so state and position can never disagree:
the next owner resumes exactly where the restored state ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from base.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer

CHANGELOG = "flash-sale-changelog"
POSITIONS_KEY = b"o|"

_positions_decoder = msgspec.json.Decoder(dict[str, int])


def changelog_topic(settings: Settings) -> str:
    return settings.topic(CHANGELOG)


def encode_positions(positions: dict[str, int]) -> bytes:
    return msgspec.json.encode(positions)


def positions_of(records: list[tuple[bytes, bytes | None]]) -> dict[str, int]:
    """The next offset of each input topic recorded by the last committed batch ({} if none)."""
    for key, value in reversed(records):
        if key == POSITIONS_KEY and value is not None:
            return _positions_decoder.decode(value)
    return {}


def ensure_changelog(settings: Settings, partitions: int, timeout: float = 30.0) -> str:
    """Create the compacted changelog with the inputs' partition count, or check the existing one."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    name = changelog_topic(settings)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=timeout).topics
    if name not in existing or existing[name].error is not None:
        topic = NewTopic(
            name, num_partitions=partitions, replication_factor=settings.replication_factor,
            config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        )
        for future in admin.create_topics([topic], operation_timeout=timeout).values():
            try:
                future.result()
            except Exception as exc:  # the other worker created it a moment ago
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(name, timeout=timeout).topics.get(name)
        if meta is not None and meta.error is None and meta.partitions and all(
            p.leader >= 0 for p in meta.partitions.values()
        ):
            if len(meta.partitions) != partitions:
                raise RuntimeError(f"{name} has {len(meta.partitions)} partitions, the inputs have {partitions}")
            return name
        time.sleep(0.1)
    raise RuntimeError(f"{name} has no leader after {timeout} s")


def read_partition(consumer: Consumer, topic: str, partition: int, timeout: float = 120.0) -> list[
    tuple[bytes, bytes | None]
]:
    """Every committed (key, value) of one changelog partition, in offset order.

    ``consumer`` must be ``read_committed`` with ``enable.partition.eof``: the end it stops at is
    then the last stable offset, so records of an aborted (killed) transaction are never restored.
    Call it after ``init_transactions`` of the partition's producer, which completes or aborts
    whatever transaction the previous owner left open.
    """
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    records: list[tuple[bytes, bytes | None]] = []
    if high <= 0:
        return records
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    try:
        deadline = time.monotonic() + timeout
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
