"""The report's pure core: stream splitting, the online curve, per-minute merging, ratios, spikes,
SKU figures, hot words, and the HTML/CSV escaping rules."""

from __future__ import annotations

import html
import json
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import core
from analytics.export import cell_text
from analytics.hotwords import is_word, tokenize
from analytics.html import fmt, fmt_duration, safe_json
from analytics.model import Figures, MinuteRow
from livecommerce.commands.report import parse_time
from warehouse.embedded import embedded_store_busy

T0 = 1_767_225_600_000
MIN = 60_000

minutes_st = st.lists(st.tuples(st.integers(0, 600), st.integers(1, 50)), max_size=60, unique_by=lambda t: t[0])


@given(minutes_st, st.integers(0, 120))
def test_split_streams_partitions_active_minutes_by_gaps(raw: list[tuple[int, int]], gap_min: int) -> None:
    minutes = [(T0 + i * MIN, n) for i, n in raw]
    spans = core.split_streams("r", minutes, gap_min * MIN)
    # every active minute is in exactly one span, and events add up
    for m, _ in minutes:
        assert sum(s.start_ms <= m < s.end_ms for s in spans) == 1
    assert sum(s.events for s in spans) == sum(n for _, n in minutes)
    # between spans the quiet gap is longer than the threshold; inside a span it is not
    for a, b in pairwise(spans):
        assert b.start_ms - a.end_ms > gap_min * MIN
    active = sorted(m for m, _ in minutes)
    for s in spans:
        inside = [m for m in active if s.start_ms <= m < s.end_ms]
        assert inside[0] == s.start_ms and inside[-1] + MIN == s.end_ms
        assert all(b - (a + MIN) <= gap_min * MIN for a, b in pairwise(inside))


def test_find_and_previous_stream() -> None:
    spans = core.split_streams("r", [(T0, 1), (T0 + 100 * MIN, 2), (T0 + 300 * MIN, 3)], 30 * MIN)
    assert [s.events for s in spans] == [1, 2, 3]
    assert core.find_stream(spans, spans[1].stream_id) == spans[1]
    assert core.previous_stream(spans, spans[2].start_ms) == spans[1]
    assert core.previous_stream(spans, spans[0].start_ms) is None
    with pytest.raises(LookupError, match="no stream"):
        core.find_stream(spans, "nope")


presence_st = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30_000)), min_size=1, max_size=40)


@given(presence_st)
def test_online_series_equals_a_replay_of_joins_and_leaves(raw: list[tuple[int, int]]) -> None:
    # each user alternates join, leave, join ... in time order
    events: list[tuple[int, str]] = []
    per_user: dict[int, int] = Counter()
    for user, offset in sorted(raw, key=lambda x: x[1]):
        events.append((T0 + offset, "join" if per_user[user] % 2 == 0 else "leave"))
        per_user[user] += 1
    seconds: dict[int, list[int]] = {}
    for ts, action in events:
        row = seconds.setdefault(ts - ts % 1000, [0, 0])
        row[0 if action == "join" else 1] += 1
    sparse = [(s, j, lv) for s, (j, lv) in sorted(seconds.items())]
    first, last = events[0][0], events[-1][0]
    series = core.online_series(sparse, 0, first, last)
    for sec, online in series:
        expected = sum(1 if a == "join" else -1 for ts, a in events if ts < sec + 1000)
        assert online == expected
    assert series[0][0] == first - first % 1000 and series[-1][0] == last - last % 1000
    top, at = core.peak(series)
    assert top == max(v for _, v in series)
    assert at == next(t for t, v in series if v == top) or top == 0


def test_event_span_takes_presence_and_per_minute_bounds() -> None:
    assert core.event_span([], [], []) is None
    presence = [(T0, 1, 0, T0 + 5, T0 + 900)]
    span = core.event_span(presence, [(T0, 3, T0 + 2, T0 + 999)], [(T0 + MIN, 1, T0 + MIN + 7, T0 + MIN + 7)])
    assert span == (T0 + 2, T0 + MIN + 7)


@given(st.lists(st.tuples(st.integers(-3, 12), st.integers(0, 9)), max_size=30))
def test_dense_minutes_keeps_every_count_and_has_no_holes(raw: list[tuple[int, int]]) -> None:
    comments = Counter()
    for i, n in raw:
        comments[T0 + i * MIN] += n
    rows = core.dense_minutes(T0, T0 + 10 * MIN, [], [(m, n, m, m) for m, n in comments.items()], [], [], [], [])
    assert sum(r.comments for r in rows) == sum(comments.values())
    assert [r.minute_ms for r in rows] == list(range(rows[0].minute_ms, rows[-1].minute_ms + MIN, MIN))
    assert rows[0].minute_ms <= T0 and rows[-1].minute_ms >= T0 + 9 * MIN


def test_figures_ratios_follow_the_counters_definitions() -> None:
    minutes = [MinuteRow(T0, accepted=3, paid=2, gmv_paid_cents=5000, scored_comments=4, negative=1,
                         sentiment_sum=1.0, comments=7)]
    f = core.figures(first_ms=T0, last_ms=T0 + 10_000, online=[(T0, 2), (T0 + 1000, 5), (T0 + 2000, 5)],
                     viewers=10, watch_ms=40_000, minutes=minutes, people={"buyers": 3}, rejected=4)
    assert (f.peak_online, f.peak_online_at_ms) == (5, T0 + 1000)
    assert f.avg_online == 4.0 and f.avg_watch_ms == 4000.0
    assert f.conversion_rate == 0.3 and f.aov_cents == 2500.0
    assert f.gpm_cents == 500_000.0  # 5000 cents * 1000 / 10 viewers
    assert f.sentiment_avg == 0.25 and f.negative_share == 0.25 and f.comments == 7 and f.rejected == 4
    empty = core.figures(first_ms=T0, last_ms=T0, online=[], viewers=0, watch_ms=0, minutes=[], people={},
                         rejected=0)
    assert empty.conversion_rate == 0.0 and empty.sentiment_avg is None and empty.avg_online == 0.0


minute_rows = st.lists(st.builds(
    lambda i, n, neg: MinuteRow(T0 + i * MIN, scored_comments=n, negative=min(neg, n)),
    st.integers(0, 100), st.integers(0, 40), st.integers(0, 40)), max_size=30, unique_by=lambda r: r.minute_ms)


@given(minute_rows)
def test_negative_spikes_are_exactly_the_minutes_over_the_threshold(rows: list[MinuteRow]) -> None:
    spikes = core.negative_spikes(rows, min_comments=5, factor=2.0, floor=0.3)
    scored = sum(r.scored_comments for r in rows)
    overall = sum(r.negative for r in rows) / scored if scored else 0.0
    expected = [r.minute_ms for r in rows
                if r.scored_comments >= 5 and r.negative / r.scored_comments >= max(0.3, 2 * overall)]
    assert [s.minute_ms for s in spikes] == expected


def test_sku_figures_apply_configs_in_order_and_count_outcomes() -> None:
    configs = [
        ("k1", "open", 10, 990, T0, T0 + MIN, "Bag"),
        ("k1", "restock", 5, 0, 0, 0, ""),
        ("k1", "open", 99, 990, T0 + 1000, T0 + 2 * MIN, ""),  # re-timed: stock unchanged, title kept
        ("k1", "close", 0, 0, 0, 0, ""),
    ]
    outcomes = [("k1", "accepted", "", 6, 8, 7920), ("k1", "rejected", "sold_out", 3, 3, 0),
                ("k1", "rejected", "user_limit", 5, 5, 0), ("k1", "paid", "", 4, 5, 4950)]
    [sku] = core.sku_figures(outcomes, [("k1", 14)], configs, {"k1": T0 + 4000})
    assert (sku.stock, sku.title, sku.starts_at_ms, sku.ends_at_ms) == (15, "Bag", T0 + 1000, T0 + 2 * MIN)
    assert (sku.attempts, sku.accepted, sku.rejected, sku.paid) == (14, 6, 8, 4)
    assert sku.accept_rate == 6 / 14 and sku.units_accepted == 8 and sku.gmv_paid_cents == 4950
    assert sku.rejections == {"user_limit": 5, "sold_out": 3}
    assert sku.sell_out_ms == 3000


@given(st.lists(st.tuples(st.text(alphabet="ab c", max_size=8), st.integers(1, 5)), max_size=20))
def test_hot_words_count_each_word_weighted_by_its_comments(texts: list[tuple[str, int]]) -> None:
    counts: Counter[str] = Counter()
    for text, n in texts:
        for w in text.split():
            counts[w] += n
    assert core.hot_words(texts, str.split, top=5) == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]


def test_jieba_tokens_keep_chinese_words_numbers_and_emoji() -> None:
    words = list(tokenize("主播yyds 666 这个颜色绝了🔥 的 了 !!!"))
    assert "主播" in words and "yyds" in words and "666" in words and "🔥" in words
    assert "的" not in words and "!!!" not in words
    assert is_word("🔥") and not is_word("了") and not is_word("，。") and not is_word("the")


def test_compare_gives_relative_change() -> None:
    rows = {c.name: c for c in core.compare(Figures(gmv_paid_cents=150, likes=3), Figures(gmv_paid_cents=100))}
    assert rows["gmv_paid_cents"].change == 0.5
    assert rows["likes"].change is None  # nothing to compare with (previous 0)
    assert all(c.previous is None for c in core.compare(Figures(), None))


@given(st.text(max_size=200))
def test_safe_json_cannot_close_a_script_and_round_trips(text: str) -> None:
    out = safe_json({"t": text})
    assert "<" not in out and ">" not in out and "&" not in out
    assert json.loads(out) == {"t": text}


@given(st.text(max_size=50))
def test_cell_text_defuses_formulas_only(text: str) -> None:
    out = cell_text(text)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert out in (text, "'" + text)


def test_formats() -> None:
    assert fmt("money", 135080) == "¥1,350.80" and fmt("percent", 0.1295) == "12.95%"
    assert fmt_duration(3_723_000) == "1:02:03" and fmt_duration(59_400) == "0:59"
    assert fmt("count", None) == "–" and html.escape("<") == "&lt;"


def test_parse_time_and_busy_store_check(tmp_path: object) -> None:
    assert parse_time("1767225600000") == T0
    assert parse_time("2026-01-01T00:00:00Z") == T0 == parse_time("2026-01-01 08:00:00+08:00")
    assert parse_time("2026-01-01T00:00") == T0  # naive = UTC
    with pytest.raises(Exception, match="ISO 8601"):
        parse_time("yesterday")
    assert not embedded_store_busy("http://localhost:8123/db")
    assert not embedded_store_busy(f"chdb://{tmp_path}/missing")
