"""The report's console figures on the real ClickHouse engine (chdb): product funnel with CTR, traffic
sources, followers, shares, key events, the room's benchmark with the 3 worst metrics and their trend,
and ``--compare``, each equal to a ground truth computed here, independently, from the simulated events.

Data path: the simulator's streams of one room on several days, every order decided by the flash-sale
pure core (the worker's code), viewer ids pseudonymised, inserted with a tenth of every table twice
(at-least-once).  The stream under review lost 9 in 10 of its product clicks, so its CTR is far below
the room's benchmark (further than its GPM, which random SKU prices spread widely).
"""

from __future__ import annotations

import csv
import random
import statistics
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from analytics.build import build_report
from analytics.export import export_csv
from analytics.html import render_html
from analytics.model import Report, iso_minute
from base.settings import Settings
from schemas import (
    Alert,
    Comment,
    Follow,
    HostAction,
    Like,
    OrderAttempt,
    OrderResult,
    Presence,
    ProductClick,
    ProductImpression,
    Share,
)
from schemas.base import Event
from simulator.config import ScenarioConfig
from tests.console_stream import decided_stream
from warehouse.pseudonym import Pseudonymiser
from warehouse.store import insert_events

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

ROOM = "room-C"
DAY = 86_400_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
#: (seed, day) of the room's streams; day 20 is under review, day 0 is outside its 14 days, day 21 after it.
PLAN = ((31, 0), (32, 8), (33, 12), (34, 15), (35, 18), (36, 20), (37, 21))
CURRENT = 36
COMMON = 36  # every stream's viewers are mapped onto these ids, so people come back


def make(seed: int, day: int, pseudonymiser: Pseudonymiser) -> list[Event]:
    cfg = ScenarioConfig(seed=seed, start_ts=START + day * DAY, duration_s=600, peak_viewers=200 + seed % 5 * 20,
                         stock=40, buyers=150, restock=10, retry_share=0.05)
    out = []
    for e in decided_stream(cfg).events:
        if seed == CURRENT and isinstance(e, ProductClick) and zlib.crc32(e.event_id.encode()) % 10:
            continue  # a stream whose product cards hardly worked: 9 taps in 10 lost
        changes: dict[str, Any] = {"room_id": ROOM}
        user = getattr(e, "user_id", None)
        if user is not None:
            changes["user_id"] = pseudonymiser.of(user.replace(f"s{seed}-", f"s{COMMON}-", 1))
        out.append(msgspec.structs.replace(e, **changes))
    return out


@pytest.fixture(scope="module")
def streams() -> dict[int, list[Event]]:
    pseudonymiser = Pseudonymiser(Settings().pseudonym_secret)
    return {seed: make(seed, day, pseudonymiser) for seed, day in PLAN}


@pytest.fixture
def stored(warehouse_db: tuple[Client, str], streams: dict[int, list[Event]]) -> tuple[Client, str]:
    client, database = warehouse_db
    rng = random.Random(3)
    for events in streams.values():
        by_type: dict[type[Event], list[Event]] = defaultdict(list)
        for e in events:
            by_type[type(e)].append(e)
        for kind, items in by_type.items():
            insert_events(client, kind, items, database=database)
            insert_events(client, kind, rng.sample(items, len(items) // 10), database=database)
    return client, database


def stream_id(seed: int) -> str:
    return iso_minute(START + dict(PLAN)[seed] * DAY)


# ---------------------------------------------------------------------------- ground truth


def of(events: list[Event], kind: type[Event]) -> list[Any]:
    """Distinct events of a type (what FINAL keeps)."""
    seen: dict[Any, Event] = {}
    for e in events:
        if isinstance(e, kind):
            key = (e.order_id, e.status) if isinstance(e, OrderResult) else getattr(e, "event_id", None) \
                or getattr(e, "alert_id", None) or getattr(e, "order_id", None)
            seen[key] = e
    return list(seen.values())


def truth(events: list[Event]) -> dict[str, Any]:
    presence = sorted(of(events, Presence), key=lambda e: (e.ts, e.event_id))
    joins = [e for e in presence if e.action == "join"]
    impressions, clicks = of(events, ProductImpression), of(events, ProductClick)
    results = of(events, OrderResult)
    accepted = [r for r in results if r.status == "accepted"]
    paid = [r for r in results if r.status == "paid"]
    times = [e.ts for e in presence] + [e.ts for kind in (Comment, Like, OrderAttempt) for e in of(events, kind)]
    first, last = min(times), max(times)
    watch = sum(e.ts for e in presence if e.action == "leave") - sum(e.ts for e in joins)
    viewers = len({e.user_id for e in presence})
    first_source: dict[str, str] = {}
    for e in joins:
        first_source.setdefault(e.user_id, e.source or "unknown")
    buyers = {r.user_id for r in accepted}
    sources: dict[str, dict[str, int]] = defaultdict(Counter)  # type: ignore[arg-type]
    for e in joins:
        s = sources[e.source or "unknown"]
        s["entries"] += 1
        s["follower_entries"] += e.is_follower is True
        s["non_follower_entries"] += e.is_follower is False
    for user, source in first_source.items():
        sources[source]["viewers"] += 1
        sources[source]["buyers"] += user in buyers
    skus: dict[str, Counter[str]] = defaultdict(Counter)
    people: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, rows in (("impressions", impressions), ("clicks", clicks)):
        for e in rows:
            skus[e.sku_id][kind] += 1
            skus[e.sku_id][f"{kind}_pinned"] += e.placement == "pinned"
            people[(kind, e.sku_id)].add(e.user_id)
    for r in paid:
        skus[r.sku_id]["paid"] += 1
    gmv = sum(r.quantity * r.price_cents for r in paid)
    comments = len(of(events, Comment))
    follows = len({e.user_id for e in of(events, Follow)})
    minutes = max(last - first, 1) / 60_000
    return {
        "figures": {
            "entries": len(joins),
            "follower_entries": sum(e.is_follower is True for e in joins),
            "impressions": len(impressions),
            "impression_viewers": len({e.user_id for e in impressions}),
            "clicks": len(clicks),
            "click_viewers": len({e.user_id for e in clicks}),
            "ctr": pytest.approx(len(clicks) / len(impressions)),
            "new_followers": follows,
            "shares": len(of(events, Share)),
            "watch_ms": watch,
        },
        "headline": {
            "avg_online": watch / (last - first),
            "avg_watch_ms": watch / viewers,
            "ctr": len(clicks) / len(impressions),
            "conversion_rate": len(buyers) / viewers,
            "gpm_cents": gmv * 1000 / viewers,
            "gmv_per_minute_cents": gmv / minutes,
            "follow_rate": follows / viewers,
            "comments_per_viewer": comments / viewers,
        },
        "sources": {s: dict(c) for s, c in sources.items()},
        "skus": {sku: {**c, "impression_viewers": len(people[("impressions", sku)]),
                       "click_viewers": len(people[("clicks", sku)])} for sku, c in skus.items()},
        "minutes": {kind: Counter(e.ts - e.ts % 60_000 for e in rows)
                    for kind, rows in (("impressions", impressions), ("clicks", clicks), ("entries", joins),
                                       ("follows", of(events, Follow)), ("shares", of(events, Share)))},
    }


# ---------------------------------------------------------------------------- tests


def report_of(stored: tuple[Client, str], **kwargs: Any) -> Report:
    client, database = stored
    return build_report(client, database, ROOM, stream_id=stream_id(CURRENT), **kwargs)


def test_funnel_sources_followers_and_shares_equal_the_ground_truth(
    stored: tuple[Client, str], streams: dict[int, list[Event]]
) -> None:
    report = report_of(stored).current
    want = truth(streams[CURRENT])
    for name, value in want["figures"].items():
        assert getattr(report.figures, name) == value, name
    for sku in report.skus:
        w = want["skus"][sku.sku_id]
        assert (sku.impressions, sku.impressions_pinned, sku.impression_viewers, sku.clicks, sku.clicks_pinned,
                sku.click_viewers) == tuple(w.get(k, 0) for k in (
                    "impressions", "impressions_pinned", "impression_viewers", "clicks", "clicks_pinned",
                    "click_viewers")), sku.sku_id
        assert sku.ctr == pytest.approx(w["clicks"] / w["impressions"])
        assert sku.conversion == pytest.approx(w.get("paid", 0) / w["clicks"])
        assert sku.impressions > sku.clicks > 0
    assert {s.sku_id for s in report.skus} == set(want["skus"])
    sources = {r.source: r for r in report.sources}
    assert set(sources) == set(want["sources"]) and len(sources) == 7
    for name, w in want["sources"].items():
        r = sources[name]
        assert (r.entries, r.follower_entries, r.non_follower_entries, r.viewers, r.buyers) == (
            w["entries"], w.get("follower_entries", 0), w.get("non_follower_entries", 0), w["viewers"],
            w.get("buyers", 0)), name
        assert r.conversion == pytest.approx(w.get("buyers", 0) / w["viewers"])
    assert [r.entries for r in report.sources] == sorted((r.entries for r in report.sources), reverse=True)
    for kind, counts in want["minutes"].items():
        assert {m.minute_ms: getattr(m, kind) for m in report.minutes if getattr(m, kind)} == dict(counts), kind


def test_key_events_are_the_host_actions_sell_outs_alerts_and_the_online_peak(
    stored: tuple[Client, str], streams: dict[int, list[Event]]
) -> None:
    report = report_of(stored).current
    events = streams[CURRENT]
    kinds = {"open_sale": "sale_open", "close_sale": "sale_close", "restock": "restock", "pin": "pin",
             "unpin": "unpin"}
    host = sorted(of(events, HostAction), key=lambda e: (e.ts, e.event_id))
    assert [(t, a, s) for t, a, s, *_ in report.host_actions] == [(e.ts, e.action, e.sku_id) for e in host]
    got = Counter((m.kind, m.sku_id, m.ts_ms) for m in report.markers)
    want = Counter((kinds[e.action], e.sku_id, e.ts) for e in host)
    want.update(("sold_out", s.sku_id, s.sold_out_at_ms) for s in report.skus if s.sold_out_at_ms is not None)
    want.update(("alert", "", a.ts) for a in of(events, Alert))
    want[("online_peak", "", report.figures.peak_online_at_ms)] += 1
    assert got == want
    assert any(m.kind == "sold_out" for m in report.markers)
    assert [m.ts_ms for m in report.markers] == sorted(m.ts_ms for m in report.markers)


def test_the_benchmark_is_the_median_of_the_last_14_days_and_names_the_3_worst(
    stored: tuple[Client, str], streams: dict[int, list[Event]]
) -> None:
    report = report_of(stored)
    view = report.benchmark
    assert view is not None
    earlier = [seed for seed, day in PLAN if 20 - 14 <= day < 20]  # day 0 is too old, day 21 is later
    assert view.streams == len(earlier) == 4
    history = {seed: truth(streams[seed])["headline"] for seed in earlier}
    medians = {name: statistics.median(h[name] for h in history.values()) for name in history[earlier[0]]}
    assert view.medians == pytest.approx(medians)
    current = truth(streams[CURRENT])["headline"]
    assert view.current == pytest.approx(current)
    gaps = sorted(((current[n] - medians[n]) / medians[n], n) for n in medians)
    assert [t.metric for t in view.worst] == [n for _, n in gaps[:3]]
    worst = view.worst[0]
    assert worst.metric == "ctr" and worst.level == "red"  # the taps that were lost
    assert worst.gap == pytest.approx(gaps[0][0])
    for t in view.worst:
        assert t.trend == [(stream_id(seed), pytest.approx(history[seed][t.metric])) for seed in earlier]


def test_compare_with_any_earlier_stream(stored: tuple[Client, str], streams: dict[int, list[Event]]) -> None:
    default = report_of(stored)
    assert default.previous is not None and default.previous.label == f"stream {stream_id(35)}"
    compared = report_of(stored, compare=stream_id(32))
    assert compared.previous is not None and compared.previous.label == f"stream {stream_id(32)}"
    want = truth(streams[32])["figures"]
    for name, value in want.items():
        assert getattr(compared.previous.figures, name) == value, name
    by_name = {c.name: c for c in compared.comparison}
    assert by_name["ctr"].previous == pytest.approx(want["ctr"])
    assert compared.current.figures == default.current.figures
    with pytest.raises(ValueError, match="earlier stream"):
        report_of(stored, compare=stream_id(37))
    with pytest.raises(LookupError, match="no stream"):
        report_of(stored, compare="1999-01-01T00:00Z")


def test_html_and_csv_carry_the_new_tables(stored: tuple[Client, str], tmp_path: Path) -> None:
    report = report_of(stored)
    page = render_html(report, plotly_js=lambda: "/* plotly */")
    for anchor in ("benchmark", "skus", "sources", "markers", "host"):
        assert f'<section id="{anchor}">' in page
    for chart in ("chart-product-funnel", "chart-sources", "chart-bench-0", "chart-bench-2"):
        assert f'id="{chart}"' in page
    assert '"shapes"' in page and "sale open" in page  # markers on the trend charts
    files = {p.name: p for p in export_csv(report, tmp_path)}

    def rows(name: str) -> list[dict[str, str]]:
        with files[name].open(encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    assert {r["source"]: int(r["entries"]) for r in rows("sources.csv")} == {
        r.source: r.entries for r in report.current.sources}
    assert len(rows("markers.csv")) == len(report.current.markers)
    assert [r["metric"] for r in rows("benchmark.csv")] == [t.metric for t in report.benchmark.worst]  # type: ignore[union-attr]
    assert len(rows("benchmark_trend.csv")) == 3 * 4
    skus = {r["sku_id"]: r for r in rows("skus.csv")}
    for s in report.current.skus:
        assert int(skus[s.sku_id]["clicks"]) == s.clicks and float(skus[s.sku_id]["ctr"]) == pytest.approx(s.ctr)


def test_benchmark_to_publish_is_the_median_of_ended_streams(
    stored: tuple[Client, str], streams: dict[int, list[Event]]
) -> None:
    from analytics.benchmark import room_benchmark
    from schemas import validate

    client, database = stored
    now = START + 22 * DAY  # after the last stream: days 8..21 are within 14 days
    bench = room_benchmark(client, database, ROOM, now_ms=now)
    assert validate(bench) == bench
    seeds = [seed for seed, day in PLAN if day >= 8]
    assert bench.streams == len(seeds) and bench.since == now - 14 * DAY and bench.ts == now
    history = [truth(streams[s])["headline"] for s in seeds]
    for name in history[0]:
        assert getattr(bench, name) == pytest.approx(statistics.median(h[name] for h in history)), name
