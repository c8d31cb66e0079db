"""The simulator's pure core: reproducible, valid, honest about what it generated.

The ground truth is checked against counts recomputed here, independently, from the stream.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecommerce.cli import main
from schemas import (
    TOPICS,
    Comment,
    Like,
    OrderAttempt,
    Payment,
    Presence,
    SaleConfig,
    ValidationError,
    decode,
    encode,
    validate,
)
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from simulator.invalid import SPOILERS
from simulator.pacing import Pacer
from simulator.texts import MOODS
from simulator.truth import Outgoing, Truth

BASE = ScenarioConfig(
    seed=7, rooms=2, duration_s=300, peak_viewers=200, comment_rate=1.0, like_rate=6.0, skus=3,
    stock=40, buyers=150, invalid_share=0.05, restock=10, retry_share=0.1,
)


def run(config: ScenarioConfig) -> tuple[list[Outgoing], Truth]:
    sim = simulate(config)
    items = list(sim)
    return items, sim.truth


@pytest.fixture(scope="module")
def stream() -> tuple[list[Outgoing], Truth]:
    return run(BASE)


def recount(items: list[Outgoing]) -> dict[str, Any]:
    """The truth's numbers, recomputed from the stream by other code than the recorder's."""
    topics: dict[str, Counter[str]] = defaultdict(Counter)
    rooms: dict[str, Counter[str]] = defaultdict(Counter)
    viewers: dict[str, set[str]] = defaultdict(set)
    order_ids: dict[str, set[str]] = defaultdict(set)
    stock: dict[str, int] = Counter()
    for item in items:
        topics[item.topic]["messages"] += 1
        topics[item.topic]["valid" if item.event is not None else "invalid"] += 1
        e = item.event
        if isinstance(e, Presence):
            rooms[e.room_id][e.action] += 1
            if e.action == "join":
                viewers[e.room_id].add(e.user_id)
        elif isinstance(e, Comment):
            rooms[e.room_id]["comments"] += 1
        elif isinstance(e, Like):
            rooms[e.room_id]["like_events"] += 1
            rooms[e.room_id]["likes"] += e.count
        elif isinstance(e, OrderAttempt):
            rooms[e.room_id]["order_attempts"] += 1
            order_ids[e.room_id].add(e.order_id)
        elif isinstance(e, Payment):
            rooms[e.room_id][e.action] += 1
        elif isinstance(e, SaleConfig) and e.action == "open":
            stock[e.sku_id] += e.stock or 0
    return {
        "topics": {t: dict(c) for t, c in topics.items()},
        "rooms": {
            r: {
                "unique_viewers": len(viewers[r]), "joins": c["join"], "leaves": c["leave"],
                "heartbeats": c["heartbeat"], "comments": c["comments"], "like_events": c["like_events"],
                "likes": c["likes"], "order_attempts": c["order_attempts"],
                "distinct_order_ids": len(order_ids[r]), "payments_paid": c["paid"],
                "payments_cancelled": c["cancelled"],
            }
            for r, c in rooms.items()
        },
        "stock_opened": dict(stock),
    }


def truth_view(truth: Truth) -> dict[str, Any]:
    d = truth.to_dict()
    keys = ("unique_viewers", "joins", "leaves", "heartbeats", "comments", "like_events", "likes",
            "order_attempts", "distinct_order_ids", "payments_paid", "payments_cancelled")
    return {
        "topics": {t: {k: v for k, v in c.items() if v} for t, c in d["topics"].items()},
        # a room whose only messages were its sale config has no room events for the recount to see
        "rooms": {r: {k: room[k] for k in keys} for r, room in d["rooms"].items() if any(room[k] for k in keys)},
        "stock_opened": {s: sku["stock_opened"] for room in d["rooms"].values() for s, sku in room["skus"].items()},
    }


def wire(items: list[Outgoing]) -> list[tuple[str, bytes, bytes]]:
    return [(i.topic, i.key, i.raw if i.event is None else encode(i.event)) for i in items]


# ---- reproducibility --------------------------------------------------------------------


def test_same_seed_gives_identical_messages(stream: tuple[list[Outgoing], Truth]) -> None:
    again, truth = run(BASE)
    assert wire(again) == wire(stream[0])
    assert truth == stream[1]


def test_another_seed_gives_another_stream(stream: tuple[list[Outgoing], Truth]) -> None:
    other, _ = run(ScenarioConfig(**{**BASE.__dict__, "seed": 8}))
    assert wire(other) != wire(stream[0])


def test_a_simulation_cannot_be_iterated_twice() -> None:
    sim = simulate(ScenarioConfig(duration_s=10, peak_viewers=5))
    list(sim)
    with pytest.raises(RuntimeError):
        list(sim)


# ---- validity -----------------------------------------------------------------------------


def test_every_valid_event_round_trips_through_its_topic_type(stream: tuple[list[Outgoing], Truth]) -> None:
    items, _ = stream
    for item in items:
        if item.event is None:
            continue
        spec = TOPICS[item.topic]
        assert type(item.event) is spec.event
        assert validate(item.event) == item.event
        assert decode(spec.event, encode(item.event), now_ms=BASE.end_ts) == item.event


def test_invalid_messages_never_decode(stream: tuple[list[Outgoing], Truth]) -> None:
    items, truth = stream
    invalid = [i for i in items if i.event is None]
    assert len(invalid) == truth.invalid > 0
    assert {i.invalid_kind for i in invalid} == set(SPOILERS)  # every kind exercised
    now = int(time.time() * 1000)
    for item in invalid:
        assert item.raw is not None
        for now_ms, max_bytes in ((BASE.end_ts, 16_384), (now, 16_384), (now, 1 << 30)):
            with pytest.raises(ValidationError):
                decode(TOPICS[item.topic].event, item.raw, now_ms=now_ms, max_bytes=max_bytes)


def test_invalid_share_is_roughly_honoured(stream: tuple[list[Outgoing], Truth]) -> None:
    _, truth = stream
    assert 0.03 < truth.invalid / truth.messages < 0.07


def test_keys_follow_the_topic_registry(stream: tuple[list[Outgoing], Truth]) -> None:
    for item in stream[0]:
        if item.event is not None:
            assert item.key == TOPICS[item.topic].key_of(item.event)
        if isinstance(item.event, (OrderAttempt, Payment, SaleConfig)):
            assert item.key == item.event.sku_id.encode()
        if isinstance(item.event, (Comment, Like, Presence)):
            assert item.key == item.event.room_id.encode()


# ---- truth --------------------------------------------------------------------------------


def test_truth_equals_counts_over_the_stream(stream: tuple[list[Outgoing], Truth]) -> None:
    items, truth = stream
    assert truth_view(truth) == recount(items)
    assert truth.messages == len(items) == truth.valid + truth.invalid
    assert sum(truth.invalid_by_kind.values()) == truth.invalid


def test_truth_to_dict_is_json(stream: tuple[list[Outgoing], Truth]) -> None:
    d = stream[1].to_dict()
    assert json.loads(json.dumps(d)) == d


def test_truth_so_far_counts_only_what_was_yielded() -> None:
    sim = simulate(ScenarioConfig(duration_s=60, peak_viewers=50))
    it = iter(sim)
    first = [next(it) for _ in range(25)]
    assert sim.truth.messages == 25
    assert recount(first)["topics"] == truth_view(sim.truth)["topics"]


# ---- ordering -----------------------------------------------------------------------------


def test_stream_is_ordered_by_emit_time_and_late_by_at_most_the_jitter(stream: tuple[list[Outgoing], Truth]) -> None:
    items, _ = stream
    assert [i.emit_ms for i in items] == sorted(i.emit_ms for i in items)
    highest = 0
    late = 0
    for item in items:
        assert item.ts <= item.emit_ms <= item.ts + BASE.jitter_ms
        assert item.ts >= highest - BASE.jitter_ms
        late += item.ts < highest
        highest = max(highest, item.ts)
        assert BASE.start_ts <= item.ts < BASE.end_ts
    assert late > 0  # some events really are out of order


def test_no_jitter_means_event_time_order() -> None:
    items, _ = run(ScenarioConfig(duration_s=60, peak_viewers=50, jitter_ms=0, late_share=1.0))
    assert [i.ts for i in items] == sorted(i.ts for i in items)


# ---- behaviour of the room ------------------------------------------------------------------


def test_order_ids_are_unique_except_deliberate_retries(stream: tuple[list[Outgoing], Truth]) -> None:
    items, truth = stream
    by_id: dict[str, list[OrderAttempt]] = defaultdict(list)
    for item in items:
        if isinstance(item.event, OrderAttempt):
            by_id[item.event.order_id].append(item.event)
    retries = 0
    for attempts in by_id.values():
        # In event time the retry follows the original (on the wire a late original may come second).
        first, *rest = sorted(attempts, key=lambda a: a.ts)
        for retry in rest:
            assert (retry.room_id, retry.sku_id, retry.user_id, retry.quantity) == (
                first.room_id, first.sku_id, first.user_id, first.quantity)
            assert retry.ts > first.ts
            retries += 1
    assert retries > 0
    assert retries == sum(r.order_retries for r in truth.rooms.values())


def test_payments_follow_their_own_orders(stream: tuple[list[Outgoing], Truth]) -> None:
    attempted: dict[str, OrderAttempt] = {}
    paid_or_cancelled: set[str] = set()
    for item in sorted(stream[0], key=lambda i: i.ts):
        e = item.event
        if isinstance(e, OrderAttempt):
            attempted.setdefault(e.order_id, e)
        elif isinstance(e, Payment):
            order = attempted[e.order_id]
            assert (e.user_id, e.sku_id, e.room_id) == (order.user_id, order.sku_id, order.room_id)
            assert e.ts > order.ts
            assert e.order_id not in paid_or_cancelled  # one payment decision per order
            paid_or_cancelled.add(e.order_id)
    assert paid_or_cancelled


def test_viewers_only_act_while_present(stream: tuple[list[Outgoing], Truth]) -> None:
    present: set[tuple[str, str]] = set()
    for item in sorted((i for i in stream[0] if i.event is not None), key=lambda i: i.ts):
        e = item.event
        if isinstance(e, Presence):
            if e.action == "join":
                assert (e.room_id, e.user_id) not in present
                present.add((e.room_id, e.user_id))
            elif e.action == "leave":
                present.remove((e.room_id, e.user_id))
            else:
                assert (e.room_id, e.user_id) in present
        elif isinstance(e, (Comment, Like)):
            assert (e.room_id, e.user_id) in present
    assert not present  # everyone leaves when the stream ends


def test_heartbeats_every_30_s_of_presence() -> None:
    items, _ = run(ScenarioConfig(duration_s=200, peak_viewers=30, jitter_ms=0))
    joined: dict[str, int] = {}
    for item in items:
        e = item.event
        if isinstance(e, Presence) and e.action == "join":
            joined[e.user_id] = e.ts
        elif isinstance(e, Presence) and e.action == "heartbeat":
            assert (e.ts - joined[e.user_id]) % 30_000 == 0 and e.ts > joined[e.user_id]


def test_each_room_runs_a_flash_sale_with_an_oversubscribed_hot_sku(stream: tuple[list[Outgoing], Truth]) -> None:
    items, truth = stream
    opens = [i.event for i in items if isinstance(i.event, SaleConfig) and i.event.action == "open"]
    assert len(opens) == BASE.rooms * BASE.skus
    for room in truth.rooms.values():
        hot = [s for s in room.skus.values() if s.hot]
        assert len(hot) == 1
        assert hot[0].distinct_buyers > 2 * hot[0].stock_opened
        assert hot[0].restocked == BASE.restock
        assert all(s.closed for s in room.skus.values())
    first_order = min(i.ts for i in items if isinstance(i.event, OrderAttempt))
    assert all(o.ts < first_order for o in opens)


def test_audience_peaks_near_the_requested_viewers(stream: tuple[list[Outgoing], Truth]) -> None:
    online: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    for item in sorted((i for i in stream[0] if isinstance(i.event, Presence)), key=lambda i: i.ts):
        e = item.event
        assert isinstance(e, Presence)
        online[e.room_id] += {"join": 1, "leave": -1, "heartbeat": 0}[e.action]
        peak[e.room_id] = max(peak[e.room_id], online[e.room_id])
    for room_peak in peak.values():
        assert 0.8 * BASE.peak_viewers <= room_peak <= 1.2 * BASE.peak_viewers


def test_chat_is_mixed_language_with_slang_and_emoji(stream: tuple[list[Outgoing], Truth]) -> None:
    texts = [i.event.text for i in stream[0] if isinstance(i.event, Comment)]
    assert len(set(texts)) > 200
    assert any(any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts)
    assert any(t.isascii() for t in texts)
    assert any("🔥" in t for t in texts)
    assert any("yyds" in t or "666" in t or "绝绝子" in t for t in texts)
    assert len(MOODS) >= 300


# ---- configuration and pacing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "word"),
    [({"rooms": 0}, "rooms"), ({"duration_s": 1}, "duration"), ({"invalid_share": 0.95}, "invalid_share"),
     ({"pay_share": 0.8, "cancel_share": 0.3}, "pay_share"), ({"start_ts": 0}, "start_ts")],
)
def test_bad_scenarios_are_refused_with_the_reason(change: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ScenarioConfig(**change)


def test_pacer_real_time_and_rate_cap() -> None:
    pacer = Pacer(start_ms=1_000_000, speed=1)
    assert pacer.wait_s(1_002_000, sent=0, elapsed_s=0.5) == pytest.approx(1.5)
    assert pacer.wait_s(1_002_000, sent=0, elapsed_s=3.0) == 0  # behind: no wait, catch up
    assert Pacer(start_ms=0, speed=10).due_s(10_000, sent=0) == pytest.approx(1.0)
    assert Pacer(start_ms=0, rate=100).due_s(0, sent=250) == pytest.approx(2.5)
    assert Pacer(start_ms=0, speed=1, rate=100).due_s(1_000, sent=250) == pytest.approx(2.5)
    assert Pacer(start_ms=0).wait_s(10**9, sent=10**9, elapsed_s=0) == 0
    with pytest.raises(ValueError):
        Pacer(start_ms=0, speed=-1)


# ---- the command, without Kafka ---------------------------------------------------------------


def test_simulate_dry_run_prints_the_truth_as_last_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--dry-run", "--json", "--speed", "0", "--duration", "30", "--viewers", "20",
            "--seed", "3", "--start-ts", "1767225600000", "--invalid-share", "0.1"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    config = ScenarioConfig(seed=3, duration_s=30, peak_viewers=20, start_ts=1_767_225_600_000, invalid_share=0.1)
    _, truth = run(config)
    assert summary["truth"] == truth.to_dict()
    assert summary["send"]["sent"] == truth.messages


# ---- properties -----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    rooms=st.integers(1, 3),
    duration_s=st.integers(10, 90),
    peak_viewers=st.integers(1, 60),
    comment_rate=st.floats(0, 5),
    like_rate=st.floats(0, 20),
    skus=st.integers(1, 3),
    stock=st.integers(1, 20),
    buyers=st.integers(0, 40),
    invalid_share=st.floats(0, 0.5),
    late_share=st.floats(0, 1),
    jitter_ms=st.integers(0, 5000),
    restock=st.integers(0, 5),
)
def test_truth_always_matches_the_stream(**params: Any) -> None:
    config = ScenarioConfig(**params)
    items, truth = run(config)
    assert truth_view(truth) == recount(items)
    highest = 0
    for item in items:
        assert config.start_ts <= item.ts < config.end_ts
        assert item.ts >= highest - config.jitter_ms
        highest = max(highest, item.ts)
        if item.event is None:
            assert item.raw is not None
            with pytest.raises(ValidationError):
                decode(TOPICS[item.topic].event, item.raw, now_ms=config.end_ts)
        else:
            assert validate(item.event) == item.event
