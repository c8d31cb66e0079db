"""The simulator's console events: a believable funnel, sources that convert differently, followers,
shares, watch time and the host's actions, with a ground truth recounted here by other code."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    Follow,
    HostAction,
    OrderAttempt,
    Presence,
    ProductClick,
    ProductImpression,
    SaleConfig,
    Share,
)
from schemas.host import sale_config_for
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from simulator.truth import Outgoing, Truth

BASE = ScenarioConfig(seed=3, rooms=2, duration_s=600, peak_viewers=400, stock=60, buyers=300, restock=20)


def run(config: ScenarioConfig) -> tuple[list[Outgoing], Truth]:
    sim = simulate(config)
    items = list(sim)
    return items, sim.truth


@pytest.fixture(scope="module")
def stream() -> tuple[list[Outgoing], Truth]:
    return run(BASE)


def by_time(items: list[Outgoing]) -> list[Any]:
    """Valid events in event-time order (ties in generation order)."""
    return [i.event for i in sorted((i for i in items if i.event is not None), key=lambda i: (i.ts, i.seq))]


def recount(items: list[Outgoing]) -> dict[str, Any]:
    """The console part of the truth, recomputed from the stream."""
    rooms: dict[str, Counter[str]] = defaultdict(Counter)
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    hosts: dict[str, Counter[str]] = defaultdict(Counter)
    skus: dict[str, Counter[str]] = defaultdict(Counter)
    viewers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for item in items:
        e = item.event
        if isinstance(e, Presence):
            if e.action == "join":
                sources[e.room_id][e.source or "unknown"] += 1
                rooms[e.room_id]["follower_joins"] += e.is_follower is True
                rooms[e.room_id]["watch_ms"] -= e.ts
            elif e.action == "leave":
                rooms[e.room_id]["watch_ms"] += e.ts
        elif isinstance(e, ProductImpression | ProductClick):
            kind = "impressions" if isinstance(e, ProductImpression) else "clicks"
            rooms[e.room_id][kind] += 1
            skus[e.sku_id][kind] += 1
            skus[e.sku_id][f"{kind}_pinned"] += e.placement == "pinned"
            viewers[(kind, e.sku_id)].add(e.user_id)
        elif isinstance(e, Follow):
            rooms[e.room_id]["follows"] += 1
        elif isinstance(e, Share):
            rooms[e.room_id]["shares"] += 1
        elif isinstance(e, HostAction):
            hosts[e.room_id][e.action] += 1
            skus[e.sku_id]["pins"] += e.action == "pin"
    return {
        "rooms": {r: {**{k: rooms[r][k] for k in ("follower_joins", "watch_ms", "impressions", "clicks", "follows",
                                                   "shares")},
                      "joins_by_source": dict(sources[r]), "host_actions": dict(hosts[r])}
                  for r in set(rooms) | set(sources) | set(hosts)},
        "skus": {s: {**{k: c[k] for k in ("impressions", "impressions_pinned", "clicks", "clicks_pinned", "pins")},
                     "impression_viewers": len(viewers[("impressions", s)]),
                     "click_viewers": len(viewers[("clicks", s)])}
                 for s, c in skus.items()},
    }


def truth_view(truth: Truth) -> dict[str, Any]:
    d = truth.to_dict()
    room_keys = ("follower_joins", "watch_ms", "impressions", "clicks", "follows", "shares", "joins_by_source",
                 "host_actions")
    sku_keys = ("impressions", "impressions_pinned", "clicks", "clicks_pinned", "pins", "impression_viewers",
                "click_viewers")
    rooms = {r: {k: room[k] for k in room_keys} for r, room in d["rooms"].items()
             if any(room[k] for k in room_keys)}
    skus = {s: {k: sku[k] for k in sku_keys} for room in d["rooms"].values() for s, sku in room["skus"].items()
            if any(sku[k] for k in sku_keys)}
    return {"rooms": rooms, "skus": skus}


def test_console_truth_equals_counts_over_the_stream(stream: tuple[list[Outgoing], Truth]) -> None:
    items, truth = stream
    assert truth_view(truth) == recount(items)


def test_each_sku_has_a_funnel_impressions_clicks_attempts_payments(stream: tuple[list[Outgoing], Truth]) -> None:
    _, truth = stream
    for room in truth.rooms.values():
        for sku in room.skus.values():
            assert sku.impressions > sku.clicks > sku.order_attempts > sku.payments_paid > 0
            assert sku.impression_viewers > sku.click_viewers > sku.distinct_buyers
            assert 0.01 < sku.clicks / sku.impressions < 0.5  # a click-through rate of a few percent to tens
            assert sku.pins >= 1


def test_every_click_follows_a_showing_and_every_order_a_click(stream: tuple[list[Outgoing], Truth]) -> None:
    seen: set[tuple[str, str]] = set()
    clicked: set[tuple[str, str]] = set()
    orders = 0
    for e in by_time(stream[0]):
        if isinstance(e, ProductImpression):
            seen.add((e.user_id, e.sku_id))
        elif isinstance(e, ProductClick):
            assert (e.user_id, e.sku_id) in seen
            clicked.add((e.user_id, e.sku_id))
        elif isinstance(e, OrderAttempt):
            assert (e.user_id, e.sku_id) in clicked
            orders += 1
    assert orders


def test_viewers_see_tap_follow_and_share_only_while_present(stream: tuple[list[Outgoing], Truth]) -> None:
    present: set[tuple[str, str]] = set()
    joined: set[tuple[str, str]] = set()
    acted = 0
    for e in by_time(stream[0]):
        if isinstance(e, Presence):
            if e.action == "join":
                present.add((e.room_id, e.user_id))
                joined.add((e.room_id, e.user_id))
            elif e.action == "leave":
                present.discard((e.room_id, e.user_id))
        elif isinstance(e, ProductImpression | ProductClick | Follow | Share):
            key = (e.room_id, e.user_id)
            # buyers who came straight from a shared product link never joined the room
            if key in joined or not e.user_id.split("-")[-1].startswith("b"):
                assert key in present, e
                acted += 1
    assert acted


def test_pinned_showings_are_of_the_pinned_product(stream: tuple[list[Outgoing], Truth]) -> None:
    pinned: dict[str, str | None] = defaultdict(lambda: None)
    pinned_shows = 0
    for e in by_time(stream[0]):
        if isinstance(e, HostAction) and e.action in ("pin", "unpin"):
            pinned[e.room_id] = e.sku_id if e.action == "pin" else None
        elif isinstance(e, ProductImpression) and e.placement == "pinned":
            assert pinned[e.room_id] == e.sku_id
            pinned_shows += 1
    assert pinned_shows


def test_every_sale_action_of_the_host_comes_with_its_sale_config(stream: tuple[list[Outgoing], Truth]) -> None:
    items, _ = stream
    configs = {e.event_id: e for i in items if isinstance(e := i.event, SaleConfig)}
    actions = [e for i in items if isinstance(e := i.event, HostAction)]
    sale_actions = [a for a in actions if a.action not in ("pin", "unpin")]
    assert {a.event_id for a in sale_actions} == set(configs)
    for a in sale_actions:
        assert configs[a.event_id] == sale_config_for(a)
    assert {a.action for a in actions} == {"pin", "unpin", "open_sale", "close_sale", "restock"}
    assert all(a.host_id.endswith("-host") for a in actions)


def test_followers_are_consistent_and_gained(stream: tuple[list[Outgoing], Truth]) -> None:
    followers: set[tuple[str, str]] = set()
    for e in by_time(stream[0]):
        if isinstance(e, Follow):
            assert (e.room_id, e.user_id) not in followers  # one can follow once
            followers.add((e.room_id, e.user_id))
        elif isinstance(e, Presence) and e.action == "join":
            if (e.room_id, e.user_id) in followers:
                assert e.is_follower is True  # who followed in an earlier visit is a follower now
            if e.source == "following_feed":
                assert e.is_follower is True
            if e.is_follower:
                followers.add((e.room_id, e.user_id))
    assert all(room.follows > 0 and room.shares > 0 for room in stream[1].rooms.values())


def test_sources_convert_differently() -> None:
    items, _ = run(ScenarioConfig(seed=9, rooms=3, duration_s=900, peak_viewers=600, stock=200, buyers=400))
    source_of: dict[tuple[str, str], str] = {}
    viewers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    buyers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    clicks: Counter[str] = Counter()
    for e in by_time(items):
        if isinstance(e, Presence) and e.action == "join":
            assert e.source is not None
            source_of[(e.room_id, e.user_id)] = e.source
            viewers[e.source].add((e.room_id, e.user_id))
        elif isinstance(e, OrderAttempt) and (e.room_id, e.user_id) in source_of:
            buyers[source_of[(e.room_id, e.user_id)]].add((e.room_id, e.user_id))
        elif isinstance(e, ProductClick) and (e.room_id, e.user_id) in source_of:
            clicks[source_of[(e.room_id, e.user_id)]] += 1
    rate = {s: len(buyers[s]) / len(viewers[s]) for s in viewers}
    assert set(rate) == {"recommend_feed", "following_feed", "short_video", "search", "ads", "shared_link", "other"}
    assert min(rate["search"], rate["following_feed"]) > 1.3 * max(rate["recommend_feed"], rate["ads"])
    assert clicks["search"] / len(viewers["search"]) > clicks["ads"] / len(viewers["ads"])


def test_watch_time_is_the_sum_of_visits(stream: tuple[list[Outgoing], Truth]) -> None:
    _, truth = stream
    for room in truth.rooms.values():
        avg_s = room.watch_ms / room.unique_viewers / 1000
        assert 30 < avg_s < BASE.duration_s


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    rooms=st.integers(1, 3),
    duration_s=st.integers(10, 120),
    peak_viewers=st.integers(1, 60),
    skus=st.integers(1, 3),
    stock=st.integers(1, 20),
    buyers=st.integers(0, 40),
    late_share=st.floats(0, 1),
    jitter_ms=st.integers(0, 5000),
    restock=st.integers(0, 5),
    close_sales=st.booleans(),
)
def test_console_truth_always_matches_the_stream(**params: Any) -> None:
    items, truth = run(ScenarioConfig(**params))
    assert truth_view(truth) == recount(items)
