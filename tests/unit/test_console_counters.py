"""The console counters' pure core against the simulator's ground truth, and its wire deltas."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import HostAction, OrderResult, ProductClick, ProductImpression, RoomBenchmark, RoomCounters
from schemas.headline import HEADLINE_METRICS
from simulator.config import ScenarioConfig
from streams.counters.console import (
    MAX_MARKERS,
    SERIES_FIELDS,
    SKU_FIELDS,
    ConsoleCounters,
    apply_delta,
    decode_state,
    delta,
    encode_state,
)
from tests.console_stream import Decided, decided_stream

MINUTE = 60_000
CONFIG = ScenarioConfig(seed=5, rooms=2, duration_s=600, peak_viewers=300, stock=50, buyers=250, restock=15)


@pytest.fixture(scope="module")
def decided() -> Decided:
    return decided_stream(CONFIG)


def fed(d: Decided) -> ConsoleCounters:
    console = ConsoleCounters()
    console.apply_all(e for e in d.room_keyed if type(e) in console.event_types)
    return console


def expected_skus(d: Decided, room_id: str) -> dict[str, dict[str, Any]]:
    """Per SKU funnel recounted from the simulator's truth and the flash-sale job's answers."""
    out: dict[str, dict[str, Any]] = {}
    for sku_id, sku in d.truth.rooms[room_id].skus.items():
        out[sku_id] = {"impressions": sku.impressions, "clicks": sku.clicks, "attempts": 0, "accepted": 0,
                       "paid": 0, "gmv_paid_cents": 0}
    seen: set[tuple[str, str, str, str]] = set()
    for r in d.results:
        if r.status not in ("accepted", "rejected", "paid"):
            continue  # no funnel figure moves (a stray payment's refusal is not the order's decision)
        key = ("p" if r.status == "paid" else "a", r.sku_id, r.user_id, r.order_id)
        if r.room_id != room_id or key in seen:
            continue  # a re-sent order or payment is answered again: counted once
        seen.add(key)
        row = out[r.sku_id]
        row["attempts"] += r.status in ("accepted", "rejected")
        row["accepted"] += r.status == "accepted"
        if r.status == "paid":
            row["paid"] += 1
            row["gmv_paid_cents"] += r.quantity * r.price_cents
    for row in out.values():
        row["ctr"] = row["clicks"] / row["impressions"] if row["impressions"] else None
        row["conversion"] = row["paid"] / row["clicks"] if row["clicks"] else None
    return out


def check_against_truth(d: Decided) -> None:
    console = fed(d)
    for room_id, truth in d.truth.rooms.items():
        snap = console.snapshot(room_id)
        skus = {sku: dict(zip(SKU_FIELDS, row, strict=True)) for sku, row in snap["skus"].items()}
        want = {s: w for s, w in expected_skus(d, room_id).items() if any(v for v in w.values())}
        assert {s: v for s, v in skus.items() if any(x for x in v.values())} == want
        assert snap["sources"] == truth.joins_by_source
        assert sum(snap["followers"].values()) == truth.joins
        assert snap["followers"]["follower"] == truth.follower_joins
        t = snap["totals"]
        assert (t["follows"], t["shares"], t["comments"], t["likes"]) == (
            truth.follows, truth.shares, truth.comments, truth.likes)
        assert t["viewers"] == truth.unique_viewers and t["entries"] == truth.joins
        if truth.joins == truth.leaves:  # everyone has left: the watch time is complete
            assert t["watch_ms"] == truth.watch_ms
            assert t["avg_watch_ms"] == (pytest.approx(truth.watch_ms / truth.unique_viewers)
                                         if truth.unique_viewers else None)
        assert t["impressions"] == truth.impressions and t["clicks"] == truth.clicks
        buyers = {r.user_id for r in d.results if r.room_id == room_id and r.status == "accepted"}
        assert t["buyers"] == len(buyers)
        check_series(d, room_id, snap["series"])
        check_markers(d, room_id, snap["markers"])


def check_series(d: Decided, room_id: str, series: dict[str, Any]) -> None:
    per_minute: dict[str, Counter[int]] = defaultdict(Counter)
    answered: set[tuple[str, str, str, str]] = set()
    for e in d.events:
        if getattr(e, "room_id", None) != room_id:
            continue
        if isinstance(e, OrderResult):
            key = (e.status, e.sku_id, e.user_id, e.order_id)
            if key in answered:
                continue  # the first answer again: counted once
            answered.add(key)
        ts = getattr(e, "ts", 0)
        m = ts - ts % MINUTE
        if isinstance(e, ProductImpression):
            per_minute["impressions"][m] += 1
        elif isinstance(e, ProductClick):
            per_minute["clicks"][m] += 1
        elif isinstance(e, OrderResult) and e.status == "paid":
            per_minute["gmv_paid_cents"][m] += e.quantity * e.price_cents
        elif isinstance(e, OrderResult) and e.status == "accepted":
            per_minute["orders"][m] += 1
    rows = series["rows"]
    if not rows:
        assert not any(per_minute.values())
        return
    minutes = [series["start"] + i * MINUTE for i in range(len(rows))]
    for name, counts in per_minute.items():
        col = SERIES_FIELDS.index(name)
        assert {m: r[col] for m, r in zip(minutes, rows, strict=True) if r[col]} == dict(counts), name


def check_markers(d: Decided, room_id: str, markers: list[list[Any]]) -> None:
    kinds = Counter(m[1] for m in markers)
    actions = Counter(e.action for e in d.of(HostAction) if e.room_id == room_id)  # type: ignore[attr-defined]
    names = {"open_sale": "sale_open", "close_sale": "sale_close", "restock": "restock", "pin": "pin",
             "unpin": "unpin"}
    for action, n in actions.items():
        assert kinds[names[action]] == n
    # sold out: the first update with nothing left, after each open or restock of the SKU
    sold_out: list[tuple[int, str]] = []
    armed: set[str] = set()
    stamps: dict[str, int] = {}
    for e in d.events:
        if isinstance(e, HostAction) and e.room_id == room_id and e.action in ("open_sale", "restock"):
            armed.add(e.sku_id)
        elif getattr(e, "room_id", None) == room_id and type(e).__name__ == "StockUpdate":
            if e.ts < stamps.get(e.sku_id, -1):  # type: ignore[attr-defined]
                continue
            stamps[e.sku_id] = e.ts  # type: ignore[attr-defined]
            if e.available == 0 and e.total > 0 and e.sku_id in armed:  # type: ignore[attr-defined]
                armed.discard(e.sku_id)  # type: ignore[attr-defined]
                sold_out.append((e.ts, e.sku_id))  # type: ignore[attr-defined]
    assert [(m[0], m[2]) for m in markers if m[1] == "sold_out"] == sold_out
    alerts = sum(1 for a in d.alerts if a.room_id == room_id)
    assert kinds["alert"] == min(alerts, MAX_MARKERS - (len(markers) - kinds["alert"]))


def test_every_console_figure_equals_the_ground_truth(decided: Decided) -> None:
    check_against_truth(decided)
    snap = fed(decided).snapshot(next(iter(decided.truth.rooms)))
    hot = next(s for s in snap["skus"] if s.endswith("sku0"))
    assert any(m[1] == "sold_out" and m[2] == hot for m in snap["markers"])  # the hot SKU really sells out
    assert len(snap["sources"]) == 7


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    rooms=st.integers(1, 2),
    duration_s=st.integers(10, 150),
    peak_viewers=st.integers(1, 60),
    skus=st.integers(1, 3),
    stock=st.integers(1, 20),
    buyers=st.integers(0, 40),
    late_share=st.floats(0, 1),
    jitter_ms=st.integers(0, 5000),
    restock=st.integers(0, 5),
)
def test_console_figures_equal_the_truth_for_any_scenario(**params: Any) -> None:
    check_against_truth(decided_stream(ScenarioConfig(**params)))


def test_arrival_order_does_not_change_the_figures(decided: Decided) -> None:
    events = [e for e in decided.room_keyed if not isinstance(e, HostAction)]  # markers keep arrival order
    forward, backward = ConsoleCounters(), ConsoleCounters()
    forward.apply_all(e for e in events if type(e) in forward.event_types)
    backward.apply_all(e for e in reversed(events) if type(e) in backward.event_types)
    for room in decided.truth.rooms:
        a, b = forward.snapshot(room), backward.snapshot(room)
        for key in ("skus", "sources", "followers", "totals", "series", "headline"):
            assert a[key] == b[key], key


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=12))
def test_deltas_rebuild_every_snapshot(seed: int, cuts: list[int]) -> None:
    d = decided_stream(ScenarioConfig(seed=seed, duration_s=150, peak_viewers=40, stock=10, buyers=30))
    console = ConsoleCounters()
    events = [e for e in d.room_keyed if type(e) in console.event_types]
    room = next(iter(d.truth.rooms))
    page = None  # what the browser holds
    last: dict[str, Any] | None = None
    i = 0
    for cut in [*cuts, len(events)]:
        console.apply_all(events[i:i + cut])
        i += cut
        snap = console.snapshot(room)
        change = delta(last, snap)
        wire = json.loads(json.dumps(change))  # it travels as JSON
        page = apply_delta(page, wire)
        assert page == json.loads(json.dumps(snap))
        last = snap


def test_a_quiet_second_sends_almost_nothing(decided: Decided) -> None:
    console = fed(decided)
    room = next(iter(decided.truth.rooms))
    before = console.snapshot(room)
    assert delta(before, console.snapshot(room)) == {}
    last_ts = before["ts"]
    console.apply(ProductClick(event_id="late-click", room_id=room, sku_id=next(iter(before["skus"])),
                               user_id="u-x", placement="shelf", ts=last_ts))
    change = delta(before, console.snapshot(room))
    assert set(change) <= {"skus", "totals", "series", "headline", "diagnosis", "worst"}
    assert len(change["series"]["rows"]) == 1  # only the current minute
    assert len(json.dumps(change)) < len(json.dumps(before)) / 5


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), cut=st.floats(0.05, 0.95), batches=st.integers(1, 8))
def test_a_restore_from_the_changelog_continues_exactly(seed: int, cut: float, batches: int) -> None:
    d = decided_stream(ScenarioConfig(seed=seed, rooms=2, duration_s=120, peak_viewers=40, stock=10, buyers=30,
                                      retry_share=0.3))
    events = [e for e in d.room_keyed if type(e) in ConsoleCounters().event_types]
    split = int(len(events) * cut)
    live = ConsoleCounters()
    log: list[tuple[bytes, bytes | None]] = []
    step = max(1, split // batches)
    for i in range(0, split, step):  # committed batch by batch, as the runtime would
        live.apply_all(events[i:min(i + step, split)])
        log += live.take_changes()
    assert all(len(value or b"") < 64_000 for _, value in log)  # no record grows with the audience
    restored = ConsoleCounters.restore(log)
    for room in live.rooms:
        assert restored.snapshot(room) == live.snapshot(room)
    # the rest of the stream (re-sent orders included) gives the same figures on both
    live.apply_all(events[split:])
    restored.apply_all(events[split:])
    for room in live.rooms:
        assert restored.snapshot(room) == live.snapshot(room)
    assert decode_state(encode_state(live.rooms[room])) == live.rooms[room]


def counters(room: str, start: int, online: int) -> RoomCounters:
    return RoomCounters(room_id=room, window_start=start, window_end=start + 1000, online=online, ts=start + 1000)


def test_online_series_and_peak_marker_follow_the_counter_snapshots() -> None:
    console = ConsoleCounters()
    t0 = 1_767_225_600_000
    for i, online in enumerate([3, 9, 7, 12, 12, 4]):
        console.apply(counters("r", t0 + i * 30_000, online))
    snap = console.snapshot("r")
    col = SERIES_FIELDS.index("online")
    assert [row[col] for row in snap["series"]["rows"]] == [9, 12, 12]
    assert snap["markers"][-1] == [t0 + 90_000, "online_peak", None, "12"]  # first reached, not the repeat
    assert snap["totals"]["peak_online"] == 12


def test_markers_are_capped_dropping_old_alerts_first() -> None:
    from schemas import Alert

    console = ConsoleCounters()
    t0 = 1_767_225_600_000
    console.apply(HostAction(event_id="h0", room_id="r", host_id="host", action="pin", sku_id="s", ts=t0))
    for i in range(MAX_MARKERS + 50):
        console.apply(Alert(alert_id=f"a{i}", room_id="r", kind="burst", level="warning", message="m", ts=t0 + i))
    snap = console.snapshot("r")
    assert len(snap["markers"]) == MAX_MARKERS and snap["markers_dropped"] == 51
    assert snap["markers"][0][1] == "pin"  # the host's action stays
    assert snap["markers"][1][0] == t0 + 51  # the oldest alerts went


def test_the_worst_metric_against_the_benchmark_is_named(decided: Decided) -> None:
    console = fed(decided)
    room = next(iter(decided.truth.rooms))
    current = console.snapshot(room)["headline"]
    assert current["ctr"] is not None
    # a benchmark twice as good as today on CTR, equal elsewhere: CTR is the worst, red
    bench = {name: value for name, value in current.items() if value is not None}
    bench["ctr"] = current["ctr"] * 2
    bench["follow_rate"] = (current["follow_rate"] or 0) * 1.1 + 1e-9
    console.apply(RoomBenchmark(room_id=room, streams=4, since=CONFIG.start_ts - 14 * 86_400_000,
                                ts=CONFIG.start_ts, **bench))
    snap = console.snapshot(room)
    assert snap["worst"] == "ctr"
    assert snap["diagnosis"][0]["level"] == "red" and snap["diagnosis"][0]["gap"] == pytest.approx(-0.5)
    assert snap["diagnosis"][1]["metric"] == "follow_rate" and snap["diagnosis"][1]["level"] == "yellow"
    assert {g["metric"] for g in snap["diagnosis"]} <= set(HEADLINE_METRICS)
    assert all(g["level"] == "green" for g in snap["diagnosis"][2:])


def test_snapshot_is_plain_json(decided: Decided) -> None:
    snap = fed(decided).snapshot(next(iter(decided.truth.rooms)))
    assert json.loads(json.dumps(snap)) == snap
    assert msgspec.json.decode(msgspec.json.encode(snap)) == snap


def test_the_console_bench_runs_and_its_deltas_are_smaller_than_snapshots() -> None:
    from bench.console import run

    result = run(duration_s=120, viewers=40)
    assert result["events"] > 0 and result["series_minutes"] == 2
    assert result["delta_bytes_max"] < result["snapshot_bytes"]


def test_hot_words_of_the_last_minute_ride_in_the_snapshot(decided: Decided) -> None:
    from schemas import Comment
    from schemas.words import tokenize
    from streams.counters.hotwords import HotWords

    console = ConsoleCounters(hot_words=HotWords())
    console.apply_all(e for e in decided.room_keyed if type(e) in console.event_types)
    room = next(iter(decided.truth.rooms))
    snap = console.snapshot(room, hot_words=10)
    newest = snap["ts"]
    start = newest - newest % 5_000 + 5_000 - 60_000
    counts: Counter[str] = Counter()
    for e in decided.events:
        if isinstance(e, Comment) and e.room_id == room and e.ts >= start:
            counts.update(tokenize(e.text))
    assert snap["hot_words"] == [list(kv) for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    assert snap["hot_words"]


def test_one_event_stamped_years_back_or_thousands_of_made_up_skus_keep_the_view_small() -> None:
    """A valid presence years in the past, and clicks naming 5,000 made-up SKUs: the view stays far below
    Kafka's message limit (it once grew to 80 MB and took the job down); the SKUs on sale keep their rows."""
    from schemas.base import MIN_TS_MS
    from schemas.events import Presence, ProductClick, StockUpdate
    from streams.counters.console import MAX_SKUS, OTHER_SKU, ConsoleCounters, encode_state

    now = 1_800_000_000_000
    console = ConsoleCounters()
    console.apply(StockUpdate(room_id="r", sku_id="real", available=5, reserved=0, sold=0, total=5, ts=now))
    console.apply(Presence(event_id="p0", room_id="r", user_id="u", action="join", ts=MIN_TS_MS))
    console.apply(Presence(event_id="p1", room_id="r", user_id="u", action="join", ts=now))
    for i in range(5000):
        console.apply(ProductClick(event_id=f"k{i}", room_id="r", user_id="u", sku_id=f"fake-{i}", placement="pinned",
                                   ts=now + i))
    console.apply(ProductClick(event_id="real-1", room_id="r", user_id="u", sku_id="real", placement="pinned",
                                 ts=now + 6000))
    view = console.snapshot("r")
    assert len(view["series"]["rows"]) <= 12 * 60 + 1
    assert len(view["skus"]) == MAX_SKUS + 2  # the capped rows, "_other", and the SKU on sale
    assert view["skus"]["real"][SKU_FIELDS.index("clicks")] == 1
    assert view["skus"][OTHER_SKU][SKU_FIELDS.index("clicks")] == 5000 - MAX_SKUS
    assert len(encode_state(console.room("r"))) < 200_000
