"""Two console workers on a real broker, one killed with SIGKILL mid-stream and restarted: the last
``room-console`` view of every room equals the simulator's truth (per-SKU impressions, clicks,
attempts, paid and GMV; traffic sources and the follower split; follows, shares, comments, likes), and
every invalid message of the topics the console job owns is dead-lettered exactly once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from base.settings import Settings
from schemas import OrderResult, decode
from schemas.console import RoomConsoleView
from schemas.events import DeadLetter
from simulator.config import ScenarioConfig
from simulator.generator import Simulation
from simulator.truth import Outgoing, Truth
from streams.counters.console_job import CHANGELOG, OWNED_INPUTS
from tests.fixtures.kafka import consume_all
from tests.fixtures.workers import Workers
from tests.integration.test_counters_failover import PRICE_CENTS, fake_flash_sale, produce, scrape

pytestmark = pytest.mark.integration


@pytest.fixture
def workers(kafka_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(kafka_settings, tmp_path, "console")
    try:
        yield pool
    finally:
        pool.stop_all()
        with contextlib.suppress(Exception):
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": kafka_settings.kafka_bootstrap})
            admin.delete_topics([kafka_settings.topic(CHANGELOG)])


def latest_views(settings: Settings) -> dict[str, RoomConsoleView]:
    """The last committed view of each room (a room's views share one partition, in order)."""
    latest: dict[str, RoomConsoleView] = {}
    for msg in consume_all(settings, "room-console", timeout=3):
        view = decode(RoomConsoleView, msg.value(), max_bytes=1 << 22, now_ms=2**62)
        latest[view.room_id] = view
    return latest


def expected(items: list[Outgoing], truth: Truth) -> dict[str, dict[str, object]]:
    """What each room's console must say once everything is read."""
    out: dict[str, dict[str, object]] = {}
    results = [i.event for i in items if isinstance(i.event, OrderResult)]
    for room_id, t in truth.rooms.items():
        skus: dict[str, list[int]] = {
            sku_id: [s.impressions, s.clicks, 0, 0, 0, 0] for sku_id, s in t.skus.items()
        }
        answered: set[tuple[str, str, str, str]] = set()
        for r in results:
            key = (r.status, r.sku_id, r.user_id, r.order_id)
            if r.room_id != room_id or key in answered:
                continue  # the fake flash sale answers a re-sent order or payment again: counted once
            answered.add(key)
            row = skus.setdefault(r.sku_id, [0, 0, 0, 0, 0, 0])
            if r.status == "accepted":
                row[2] += 1
                row[3] += 1
            elif r.status == "paid":
                row[4] += 1
                row[5] += r.quantity * PRICE_CENTS
        out[room_id] = {
            "skus": {s: row for s, row in skus.items() if any(row)},
            "sources": t.joins_by_source,
            "follower_entries": t.follower_joins,
            "entries": t.joins,
            "viewers": t.unique_viewers,
            "follows": t.follows,
            "shares": t.shares,
            "comments": t.comments,
            "likes": t.likes,
        }
    return out


def observed(view: RoomConsoleView) -> dict[str, object]:
    t = view.totals
    return {
        "skus": {s: [r.impressions, r.clicks, r.attempts, r.accepted, r.paid, r.gmv_paid_cents]
                 for s, r in view.skus.items()
                 if any((r.impressions, r.clicks, r.attempts, r.accepted, r.paid, r.gmv_paid_cents))},
        "sources": view.sources,
        "follower_entries": view.followers.follower,
        "entries": t.entries,
        "viewers": t.viewers,
        "follows": t.follows,
        "shares": t.shares,
        "comments": t.comments,
        "likes": t.likes,
    }


def test_sigkill_and_restart_leave_the_console_equal_to_the_truth(
    kafka_settings: Settings, workers: Workers
) -> None:
    sim = Simulation(ScenarioConfig(
        seed=12, rooms=4, duration_s=240, peak_viewers=400, invalid_share=0.02, jitter_ms=1500,
        start_ts=int(time.time() * 1000) - 3_600_000,
    ))
    items = fake_flash_sale(list(sim))
    truth = sim.truth
    # The simulator spoils comments, likes and presence; spoil the console's own (owned) inputs too,
    # in both halves: not JSON, a missing field, and an impression of an invalid SKU id.
    room = next(iter(truth.rooms))
    bad = [b"not json", b'{"room_id": "%s"}' % room.encode(),
           b'{"event_id":"x","room_id":"%s","sku_id":"bad sku","user_id":"u","placement":"shelf","ts":1}'
           % room.encode()]
    spoiled = {name: [Outgoing(topic=name, key=room.encode(), ts=0, emit_ms=0, seq=0, raw=raw, invalid_kind="test")
                      for raw in bad] for name in OWNED_INPUTS}
    for k, outgoing in enumerate(o for name in OWNED_INPUTS for o in spoiled[name]):
        items.insert((k * 7919) % len(items), outgoing)
    half = len(items) // 2
    want = expected(items, truth)
    assert all(w["skus"] and w["follows"] and w["shares"] for w in want.values())  # a real funnel to check

    workers.start("1")
    workers.start("2")
    workers.wait_assigned("1", "2")
    produce(kafka_settings, items[:half])
    rest = threading.Thread(target=produce, args=(kafka_settings, items[half:]))
    rest.start()
    time.sleep(0.5)
    workers.kill("2")  # SIGKILL while the second half is flowing in
    rest.join()
    time.sleep(2)
    workers.start("2")

    deadline = time.monotonic() + 150  # a generous bound for a loaded machine; normally seconds
    got: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        got = {room: observed(view) for room, view in latest_views(kafka_settings).items()}
        if got == want:
            break
        time.sleep(2)
    assert set(got) == set(want), workers.logs()
    for room_id in want:
        assert got[room_id] == want[room_id], f"{room_id}\n{workers.logs()}"

    metrics = scrape(workers.port("1"))  # the surviving worker's statistics reach Prometheus
    assert metrics["lc_console_events_total"] > 0 and metrics["lc_console_outputs_total"] > 0
    assert not any("Misrouted" in name or "KeyMismatch" in name for name in metrics)
    # the killed worker's partitions were taken over from their changelog (by whichever worker got them)
    restored = sum(scrape(workers.port(w))["lc_console_restored_records_total"] for w in ("1", "2"))
    assert restored > 0

    dead = [msgspec.json.decode(m.value(), type=DeadLetter) for m in consume_all(kafka_settings, "dead-letters")]
    for name in OWNED_INPUTS:
        mine = [d for d in dead if d.source_topic == kafka_settings.topic(name)]
        invalid = truth.topics[name].invalid if name in truth.topics else 0
        assert len(mine) == invalid + len(bad), name
        assert len({(d.partition, d.offset) for d in mine}) == len(mine)  # each exactly once
        assert sorted(d.payload for d in mine if d.payload in bad) == sorted(bad)
        assert all(d.reason for d in mine)
