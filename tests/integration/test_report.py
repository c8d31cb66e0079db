"""The post-stream report on the real ClickHouse engine (chdb): every figure equals the ground truth
computed here, independently, from the simulated events; hostile input is harmless.

Data path (what the product does, minus Kafka): the simulator generates two streams of one room a
day apart (the earlier one's viewers partly return), the flash-sale pure core decides every order
and payment in log order (the same code the worker runs), comments get a deterministic sentiment,
viewer ids are pseudonymised, and everything goes through ``warehouse.store.insert_events``, with a
slice of every table inserted twice (an at-least-once replay the report must not double count).
"""

from __future__ import annotations

import csv
import html
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from analytics.build import NothingToReport, build_report, list_streams
from analytics.export import export_csv
from analytics.hotwords import tokenize
from analytics.html import render_html
from analytics.model import Report, iso_minute
from base.settings import Settings
from schemas import Alert, Comment, Like, OrderAttempt, OrderResult, Payment, Presence, SaleConfig, ScoredComment
from schemas.base import Event
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from streams.flash_sale.inventory import Inventory
from streams.flash_sale.risk import RiskConfig
from warehouse.pseudonym import Pseudonymiser
from warehouse.store import count_rows, insert_events

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

ROOM = "room-A"
DAY_MS = 86_400_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOSTILE_TEXTS = (
    "'); DROP TABLE comments; --",
    '<script>alert("pwned")</script>',
    "\"quoted\" & 'single' </script><img src=x onerror=alert(1)> {room:String}",
    "=cmd|' /C calc'!A0",
)
HOSTILE_TITLE = "<script>alert('title')</script> 限时"
RAW_ID = re.compile(r"s1[12]-r0-[ub]\d+")


def sentiment_of(text: str) -> tuple[str, float]:
    """A deterministic stand-in for the scorer (the report reads whatever the scorer stored)."""
    score = (zlib.crc32(text.encode()) % 2001 - 1000) / 1000
    return ("positive" if score > 0.3 else "negative" if score < -0.3 else "neutral"), score


@dataclass
class Stream:
    start_ts: int
    end_ts: int
    events: dict[type[Event], list[Event]] = field(default_factory=lambda: defaultdict(list))

    def of(self, kind: type[Event]) -> list[Any]:
        return self.events[kind]


def _retarget(event: Event, seed: int, users_from: int) -> Event:
    """Put the event in ROOM; the earlier stream's viewer ids are mapped onto the later one's, so
    that the same people come back."""
    changes: dict[str, Any] = {"room_id": ROOM}
    user = getattr(event, "user_id", None)
    if user is not None and seed != users_from:
        changes["user_id"] = user.replace(f"s{seed}-", f"s{users_from}-", 1)
    return msgspec.structs.replace(event, **changes)


def make_stream(seed: int, start_ts: int, users_from: int, pseudonymiser: Pseudonymiser, hostile: bool) -> Stream:
    cfg = ScenarioConfig(seed=seed, start_ts=start_ts, duration_s=600, peak_viewers=250, stock=40, buyers=160,
                         late_share=0.05, retry_share=0.1)
    stream = Stream(cfg.start_ts, cfg.end_ts)
    inventory = Inventory(RiskConfig(spike_threshold=10))  # low, so that the rush raises some alerts
    raw: list[Event] = []
    for item in simulate(cfg):
        assert item.event is not None
        event = _retarget(item.event, seed, users_from)
        if hostile and isinstance(event, SaleConfig) and event.action == "open" and event.sku_id.endswith("sku1"):
            event = msgspec.structs.replace(event, title=HOSTILE_TITLE)
        raw.append(event)
        if isinstance(event, SaleConfig | OrderAttempt | Payment):
            inventory.handle(event)
            out, stock = inventory.take_outputs()
            raw += out.results + out.alerts + stock
    inventory.tick(cfg.end_ts + 3_600_000)  # the timer releases the holds nobody paid for
    out, stock = inventory.take_outputs()
    raw += out.results + out.alerts + stock
    if hostile:
        for i, text in enumerate(HOSTILE_TEXTS):
            raw.append(Comment(event_id=f"hostile-{i}", room_id=ROOM, user_id=f"s{seed}-r0-u1", text=text,
                               ts=start_ts + 100_000 + i))
    for event in list(raw):
        if isinstance(event, Comment):
            label, score = sentiment_of(event.text)
            if event.event_id.startswith("hostile-"):
                label, score = "negative", -1.0
            raw.append(ScoredComment(event_id=event.event_id, room_id=ROOM, user_id=event.user_id, text=event.text,
                                     label=label, score=score, confidence=0.9, ts=event.ts))
    for event in raw:
        stream.events[type(event)].append(pseudonymiser.event(event))
    return stream


def insert(client: Client, database: str, streams: Iterable[Stream], rng: random.Random) -> int:
    rows = 0
    for stream in streams:
        for kind, events in stream.events.items():
            rows += insert_events(client, kind, events, database=database)
            replay = rng.sample(events, len(events) // 10)  # at-least-once: a tenth arrives twice
            rows += insert_events(client, kind, replay, database=database)
    return rows


# ---------------------------------------------------------------------------- ground truth


def latest_results(stream: Stream) -> list[OrderResult]:
    """One result per (order, status), the latest (what ReplacingMergeTree(ts) keeps)."""
    best: dict[tuple[str, str], OrderResult] = {}
    for r in stream.of(OrderResult):
        key = (r.order_id, r.status)
        if key not in best or r.ts >= best[key].ts:
            best[key] = r
    return list(best.values())


def truth(stream: Stream, earlier: Stream | None) -> dict[str, Any]:
    presence = sorted({e.event_id: e for e in stream.of(Presence)}.values(), key=lambda e: e.ts)
    comments = {e.event_id: e for e in stream.of(Comment)}
    likes = {e.event_id: e for e in stream.of(Like)}
    orders = {e.order_id: e for e in stream.of(OrderAttempt)}
    times = [e.ts for e in presence] + [e.ts for e in comments.values()] + [e.ts for e in likes.values()]
    times += [e.ts for e in stream.of(OrderAttempt)]
    first, last = min(times), max(times)
    # online at the end of each second, replaying joins and leaves
    online, best, best_at, i = 0, 0, 0, 0
    for sec in range(first - first % 1000, last + 1, 1000):
        while i < len(presence) and presence[i].ts < sec + 1000:
            online += {"join": 1, "leave": -1}.get(presence[i].action, 0)
            i += 1
        if online > best:
            best, best_at = online, sec
    watch: dict[str, int] = defaultdict(int)
    inside: dict[str, bool] = {}
    for e in presence:
        if e.action == "join":
            watch[e.user_id] -= e.ts
            inside[e.user_id] = True
        elif e.action == "leave":
            watch[e.user_id] += e.ts
            inside[e.user_id] = False
    total_watch = sum(watch.values()) + sum(last for u, now_in in inside.items() if now_in)
    viewers = len({e.user_id for e in presence})
    results = latest_results(stream)

    def of_status(status: str) -> list[OrderResult]:
        return [r for r in results if r.status == status]

    accepted = Counter(r.user_id for r in of_status("accepted"))
    earlier_buyers = {r.user_id for r in latest_results(earlier) if r.status == "accepted"} if earlier else set()
    scored = list({e.event_id: e for e in stream.of(ScoredComment)}.values())
    gmv_paid = sum(r.quantity * r.price_cents for r in of_status("paid"))
    duration = last - first
    return {
        "first_event_ms": first,
        "last_event_ms": last,
        "duration_ms": duration,
        "peak_online": best,
        "peak_online_at_ms": best_at,
        "avg_online": pytest.approx(total_watch / duration),
        "unique_viewers": viewers,
        "avg_watch_ms": pytest.approx(total_watch / viewers),
        "comments": len(comments),
        "commenters": len({e.user_id for e in comments.values()}),
        "likes": sum(e.count for e in likes.values()),
        "order_attempts": len(orders),
        "attempters": len({e.user_id for e in orders.values()}),
        "accepted": len(of_status("accepted")),
        "rejected": len(of_status("rejected")),
        "paid": len(of_status("paid")),
        "cancelled": len(of_status("cancelled")),
        "expired": len(of_status("expired")),
        "units": sum(r.quantity for r in of_status("accepted")),
        "gmv_reserved_cents": sum(r.quantity * r.price_cents for r in of_status("accepted")),
        "gmv_paid_cents": gmv_paid,
        "buyers": len(accepted),
        "paying_buyers": len({r.user_id for r in of_status("paid")}),
        "conversion_rate": pytest.approx(len(accepted) / viewers),
        "gpm_cents": pytest.approx(gmv_paid * 1000 / viewers),
        "aov_cents": pytest.approx(gmv_paid / len(of_status("paid"))),
        "multi_order_buyers": sum(1 for n in accepted.values() if n > 1),
        "returning_buyers": len(set(accepted) & earlier_buyers),
        "scored_comments": len(scored),
        "sentiment_avg": pytest.approx(sum(e.score for e in scored) / len(scored)),
        "negative_share": pytest.approx(sum(e.label == "negative" for e in scored) / len(scored)),
    }


def sku_truth(stream: Stream) -> dict[str, dict[str, Any]]:
    results = sorted(latest_results(stream), key=lambda r: r.ts)
    out: dict[str, dict[str, Any]] = {}
    configs = sorted(stream.of(SaleConfig), key=lambda c: c.ts)
    available: dict[str, int] = {}
    for c in configs:
        sku = out.setdefault(c.sku_id, {"rejections": Counter(), "sold_out_at_ms": None})
        if c.action == "open":
            sku.update(stock=c.stock, starts_at_ms=c.starts_at, title=c.title)
            available[c.sku_id] = c.stock or 0
    attempts = Counter(o.sku_id for o in {o.order_id: o for o in stream.of(OrderAttempt)}.values())
    for sku_id, n in attempts.items():
        out[sku_id]["attempts"] = n
    # replay stock from the results: accepted takes units, cancelled and expired give them back
    for r in results:
        sku = out[r.sku_id]
        sku[r.status] = sku.get(r.status, 0) + 1
        if r.status == "rejected":
            sku["rejections"][r.reason] += 1
        if r.status == "accepted":
            available[r.sku_id] -= r.quantity
            if available[r.sku_id] == 0 and sku["sold_out_at_ms"] is None:
                sku["sold_out_at_ms"] = r.ts
        elif r.status in ("cancelled", "expired"):
            available[r.sku_id] += r.quantity
    return out


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def streams() -> tuple[Stream, Stream]:
    secret = Settings().pseudonym_secret
    pseudonymiser = Pseudonymiser(secret)
    earlier = make_stream(11, START, 12, pseudonymiser, hostile=False)
    current = make_stream(12, START + DAY_MS, 12, pseudonymiser, hostile=True)
    return earlier, current


@pytest.fixture
def stored(warehouse_db: tuple[Client, str], streams: tuple[Stream, Stream]) -> tuple[Client, str]:
    client, database = warehouse_db
    insert(client, database, streams, random.Random(5))
    return client, database


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- tests


def test_every_figure_equals_the_ground_truth(stored: tuple[Client, str], streams: tuple[Stream, Stream]) -> None:
    client, database = stored
    earlier, current = streams
    report = build_report(client, database, ROOM)

    assert report.current.label == f"stream {iso_minute(current.start_ts)}"
    for name, expected in truth(current, earlier).items():
        assert getattr(report.current.figures, name) == expected, name
    assert report.previous is not None
    for name, expected in truth(earlier, None).items():
        assert getattr(report.previous.figures, name) == expected, name
    assert report.current.figures.returning_buyers > 0  # the scenario really has repeat buyers

    by_name = {c.name: c for c in report.comparison}
    assert by_name["gmv_paid_cents"].previous == report.previous.figures.gmv_paid_cents


def test_per_sku_figures_equal_the_ground_truth(stored: tuple[Client, str], streams: tuple[Stream, Stream]) -> None:
    client, database = stored
    report = build_report(client, database, ROOM)
    expected = sku_truth(streams[1])
    assert {s.sku_id for s in report.current.skus} == set(expected)
    for sku in report.current.skus:
        want = expected[sku.sku_id]
        assert sku.attempts == want["attempts"]
        assert (sku.accepted, sku.rejected, sku.paid, sku.cancelled, sku.expired) == tuple(
            want.get(s, 0) for s in ("accepted", "rejected", "paid", "cancelled", "expired"))
        assert sku.accept_rate == pytest.approx(want.get("accepted", 0) / want["attempts"])
        assert sku.rejections == dict(want["rejections"])
        assert sku.stock == want["stock"] and sku.title == want["title"]
        assert sku.sold_out_at_ms == want["sold_out_at_ms"]
        if want["sold_out_at_ms"] is not None:
            assert sku.sell_out_ms == want["sold_out_at_ms"] - want["starts_at_ms"]
    assert any(s.sold_out_at_ms is not None for s in report.current.skus)  # the hot SKU sells out


def test_minutes_comments_words_and_alerts_equal_the_ground_truth(
    stored: tuple[Client, str], streams: tuple[Stream, Stream]
) -> None:
    client, database = stored
    current = streams[1]
    report = build_report(client, database, ROOM).current
    comments = {e.event_id: e for e in current.of(Comment)}
    per_minute = Counter(e.ts - e.ts % 60_000 for e in comments.values())
    assert {m.minute_ms: m.comments for m in report.minutes if m.comments} == dict(per_minute)
    paid_per_minute: Counter[int] = Counter()
    for r in latest_results(current):
        if r.status == "paid":
            paid_per_minute[r.ts - r.ts % 60_000] += r.quantity * r.price_cents
    assert {m.minute_ms: m.gmv_paid_cents for m in report.minutes if m.gmv_paid_cents} == dict(paid_per_minute)
    assert [m.minute_ms for m in report.minutes] == list(
        range(report.minutes[0].minute_ms, report.minutes[-1].minute_ms + 1, 60_000))  # dense

    scored = list({e.event_id: e for e in current.of(ScoredComment)}.values())
    positive = sorted((e for e in scored if e.label == "positive"), key=lambda e: (-e.score, e.ts, e.event_id))
    negative = sorted((e for e in scored if e.label == "negative"), key=lambda e: (e.score, e.ts, e.event_id))
    assert [c.text for c in report.top_positive] == [e.text for e in positive[:10]]
    assert [c.text for c in report.top_negative] == [e.text for e in negative[:10]]

    words: Counter[str] = Counter()
    for e in comments.values():
        words.update(tokenize(e.text))
    assert report.hot_words_exact
    expected_words = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    assert report.hot_words == expected_words

    alerts = {a.alert_id for a in current.of(Alert)}
    assert alerts and report.alerts_total == len(alerts)
    assert [a.ts_ms for a in report.alerts] == sorted(a.ts for a in {a.alert_id: a for a in current.of(Alert)}.values())
    assert sum(n for _, _, n in report.alert_kinds) == len(alerts)


def test_streams_are_found_and_a_time_range_gives_the_same_figures(
    stored: tuple[Client, str], streams: tuple[Stream, Stream]
) -> None:
    client, database = stored
    earlier, current = streams
    spans = list_streams(client, database, ROOM)
    assert [s.stream_id for s in spans] == [iso_minute(earlier.start_ts), iso_minute(current.start_ts)]
    by_id = build_report(client, database, ROOM, stream_id=spans[0].stream_id)
    assert by_id.previous is None
    assert by_id.current.figures == build_report(client, database, ROOM).previous.figures  # type: ignore[union-attr]
    ranged = build_report(client, database, ROOM, start_ms=current.start_ts, end_ms=current.end_ts + 600_000)
    assert ranged.current.figures.comments == truth(current, earlier)["comments"]
    assert ranged.current.figures.gmv_paid_cents == truth(current, earlier)["gmv_paid_cents"]
    with pytest.raises(LookupError, match="no stream"):
        build_report(client, database, ROOM, stream_id="1999-01-01T00:00Z")


def test_hostile_input_is_harmless_and_no_raw_user_id_is_shown(
    stored: tuple[Client, str], tmp_path: Path
) -> None:
    client, database = stored
    rows_before = {t: count_rows(client, t, database=database) for t in ("comments", "orders", "presence")}
    for room in ("x' OR '1'='1", "room-A'; DROP TABLE comments; --", "<script>alert(1)</script>", "{room:String}"):
        assert list_streams(client, database, room) == []
        with pytest.raises(NothingToReport):
            build_report(client, database, room)
    assert {t: count_rows(client, t, database=database) for t in rows_before} == rows_before

    report: Report = build_report(client, database, ROOM)
    assert {c.text for c in report.current.top_negative} >= set(HOSTILE_TEXTS)
    page = render_html(report)
    parser = _Tags()
    parser.feed(page)
    assert parser.tags["script"] == 2 and parser.tags["img"] == 0  # plotly.js + the chart loader only
    assert "<script>alert" not in page and "<img src=x" not in page
    for text in (*HOSTILE_TEXTS, HOSTILE_TITLE):
        assert html.escape(text, quote=True) in page
    assert not RAW_ID.findall(page)
    assert "https://" not in page.split("<script>", 1)[0]  # no external resource before the inlined library

    files = export_csv(report, tmp_path / "csv")
    for path in files:
        assert not RAW_ID.findall(path.read_text(encoding="utf-8-sig")), path.name
    top = _csv(tmp_path / "csv" / "top_comments.csv")
    assert {row["text"] for row in top} >= {*HOSTILE_TEXTS[:3], "'" + HOSTILE_TEXTS[3]}  # the formula is defused
    summary = {row["figure"]: row for row in _csv(tmp_path / "csv" / "summary.csv")}
    assert int(summary["gmv_paid_cents"]["current"]) == report.current.figures.gmv_paid_cents
    assert int(summary["unique_viewers"]["previous"]) == report.previous.figures.unique_viewers  # type: ignore[union-attr]
    minutes = _csv(tmp_path / "csv" / "minutes.csv")
    assert sum(int(r["comments"]) for r in minutes) == report.current.figures.comments
