"""The simulator against a real Kafka broker: what lands on each topic is exactly the ground truth.

The generator is pure and seeded, so the test regenerates the same stream and compares it message
by message with what it reads back: nothing lost, nothing duplicated, keys as the registry says,
and per key (per SKU for orders) the order in which the simulator sent them.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

import pytest

from base.settings import Settings
from livecommerce.cli import main
from schemas import TOPICS, Comment, OrderAttempt, ValidationError, decode
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from simulator.pacing import Pacer
from simulator.producer import send
from simulator.truth import Outgoing
from tests.fixtures.kafka import consume_all

pytestmark = pytest.mark.integration

SENT_TOPICS = ("comments", "likes", "presence", "sale-config", "orders", "payments")


def scenario(seed: int) -> ScenarioConfig:
    now = int(time.time() * 1000)
    return ScenarioConfig(
        seed=seed, rooms=2, duration_s=120, start_ts=now - 120_000, peak_viewers=80, comment_rate=2.0,
        skus=2, stock=20, buyers=60, invalid_share=0.05, restock=5,
    )


def payload(item: Outgoing) -> bytes:
    from schemas import encode

    return item.raw if item.event is None else encode(item.event)


def test_every_simulated_message_lands_once_with_its_key_and_order(kafka_settings: Settings) -> None:
    config = scenario(seed=11)
    sim = simulate(config)
    report = send(sim, kafka_settings, Pacer(start_ms=config.start_ts))
    truth = sim.truth
    assert report.failed == 0, report.errors
    assert report.sent == report.delivered == truth.messages > 0

    expected: dict[str, list[tuple[bytes, bytes]]] = defaultdict(list)
    for item in simulate(config):  # the same seed regenerates the same stream
        expected[item.topic].append((item.key, payload(item)))

    for name in SENT_TOPICS:
        spec = TOPICS[name]
        messages = consume_all(kafka_settings, name)
        got = [(m.key(), m.value()) for m in messages]
        assert len(got) == truth.topics[name].messages
        assert Counter(got) == Counter(expected[name])

        per_key_sent: dict[bytes, list[bytes]] = defaultdict(list)
        for key, value in expected[name]:
            per_key_sent[key].append(value)
        per_key_got: dict[bytes, list[bytes]] = defaultdict(list)
        partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
        for m in messages:
            per_key_got[m.key()].append(m.value())
            partitions_of_key[m.key()].add(m.partition())
        assert per_key_got == per_key_sent  # one key, one partition, sent order kept
        assert all(len(p) == 1 for p in partitions_of_key.values())

        valid = invalid = 0
        for m in messages:
            try:
                event = decode(spec.event, m.value())
            except ValidationError:
                invalid += 1
                continue
            valid += 1
            assert m.key() == spec.key_of(event)
            if isinstance(event, OrderAttempt):
                assert m.key() == event.sku_id.encode()
            if isinstance(event, Comment):
                assert m.key() == event.room_id.encode()
        assert (valid, invalid) == (truth.topics[name].valid, truth.topics[name].invalid)


def test_simulate_command_reports_the_truth_of_what_it_sent(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in kafka_settings.as_env().items():
        monkeypatch.setenv(name, value)
    argv = ["simulate", "--json", "--speed", "0", "--duration", "60", "--viewers", "40", "--rooms", "2",
            "--buyers", "30", "--stock", "10", "--invalid-share", "0.1", "--seed", "5"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["send"]["failed"] == 0
    assert summary["send"]["delivered"] == summary["truth"]["messages"]
    for name, counts in summary["truth"]["topics"].items():
        assert len(consume_all(kafka_settings, name)) == counts["messages"]
    rooms = summary["truth"]["rooms"]
    per_room: Counter[str] = Counter()
    for m in consume_all(kafka_settings, "comments"):
        try:
            per_room[decode(Comment, m.value()).room_id] += 1
        except ValidationError:
            continue
    assert per_room == Counter({room: r["comments"] for room, r in rooms.items() if r["comments"]})


def test_undeliverable_messages_are_counted_as_failures(kafka_settings: Settings) -> None:
    from confluent_kafka import Producer

    from simulator.producer import producer_config

    nowhere = kafka_settings.replace(topic_prefix="never-created.")  # topic auto-creation is off
    producer = Producer({**producer_config(nowhere, "none"), "message.timeout.ms": 2000})
    config = ScenarioConfig(seed=3, duration_s=10, peak_viewers=5, start_ts=int(time.time() * 1000) - 10_000)
    sim = simulate(config)
    report = send(sim, nowhere, Pacer(start_ms=config.start_ts), producer=producer, flush_timeout_s=30)
    assert report.sent == sim.truth.messages > 0
    assert report.failed == report.sent
    assert report.delivered == 0
    assert report.errors


def test_simulate_command_refuses_when_topics_are_missing(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in kafka_settings.replace(topic_prefix="never-created.").as_env().items():
        monkeypatch.setenv(name, value)
    assert main(["simulate", "--json", "--speed", "0", "--duration", "10", "--viewers", "5"]) == 2
    assert "topics missing" in capsys.readouterr().err
