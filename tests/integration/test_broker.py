"""The real broker, topics and fixtures: a round trip, topic layout, transactions, and the CLI lifecycle."""

from __future__ import annotations

import pytest

from livecommerce.settings import Settings
from tests.fixtures.kafka import consume_all

pytestmark = pytest.mark.integration


def test_produce_consume_round_trip_keeps_every_message_and_key_partition(kafka_settings: Settings) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_settings.kafka_bootstrap, "linger.ms": 5})
    sent = {f"m{i}".encode(): f"room-{i % 7}".encode() for i in range(500)}
    for value, key in sent.items():
        producer.produce(kafka_settings.topic("comments"), key=key, value=value)
    assert producer.flush(30) == 0

    received = consume_all(kafka_settings, "comments", expected=len(sent))

    assert sorted(m.value() for m in received) == sorted(sent)
    partitions_of_key: dict[bytes, set[int]] = {}
    for m in received:
        assert m.key() == sent[m.value()]
        partitions_of_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in partitions_of_key.values())
    assert len({p for ps in partitions_of_key.values() for p in ps}) > 1
