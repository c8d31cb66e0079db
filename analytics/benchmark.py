"""The room's own benchmark: the median of its earlier streams, per headline metric.

Computed where the store is read (the report; the store's owner publishing ``room-benchmarks``) with
the report's own definitions: each earlier stream's figures come from :func:`analytics.build.stream_report`,
so "CTR" or "average watch time" means the same in the live console, the benchmark and the report.
The metrics and the comparison live in :mod:`schemas.headline`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from analytics.model import BenchmarkView, Figures, MetricTrend, StreamSpan
from schemas.events import RoomBenchmark
from schemas.headline import (
    BENCHMARK_DAYS,
    DAY_MS,
    HEADLINE_METRICS,
    HeadlineInputs,
    Metrics,
    benchmark_metrics,
    benchmark_of,
    headline,
    level,
    worst_n,
)

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: (span, its figures) of one earlier stream.
History = list[tuple[StreamSpan, Figures]]


def figures_headline(f: Figures) -> Metrics:
    """The headline metrics of a stream from its report figures."""
    return headline(HeadlineInputs(
        duration_ms=f.duration_ms, watch_ms=f.watch_ms, viewers=f.unique_viewers, impressions=f.impressions,
        clicks=f.clicks, buyers=f.buyers, gmv_paid_cents=f.gmv_paid_cents, follows=f.new_followers,
        comments=f.comments,
    ))


def earlier_spans(spans: Iterable[StreamSpan], before_ms: int, days: int = BENCHMARK_DAYS) -> list[StreamSpan]:
    """The streams that started within ``days`` before ``before_ms`` and ended by then, oldest first."""
    since = before_ms - days * DAY_MS
    return sorted((s for s in spans if s.start_ms >= since and s.end_ms <= before_ms), key=lambda s: s.start_ms)


def benchmark_from(room_id: str, history: History, before_ms: int, days: int = BENCHMARK_DAYS) -> RoomBenchmark:
    return benchmark_of(room_id, [figures_headline(f) for _, f in history], since_ms=before_ms - days * DAY_MS,
                        now_ms=before_ms)


def benchmark_view(current: Figures, history: History, room_id: str, before_ms: int,
                   days: int = BENCHMARK_DAYS, n: int = 3) -> BenchmarkView:
    """This stream against the median of ``history``: the ``n`` worst metrics, each with its trend."""
    bench = benchmark_from(room_id, history, before_ms, days)
    medians = benchmark_metrics(bench)
    now = figures_headline(current)
    trends = {name: [(span.stream_id, figures_headline(f)[name]) for span, f in history] for name in HEADLINE_METRICS}
    worst = [
        MetricTrend(g.metric, g.value, g.benchmark, g.gap, level(g.gap), trends[g.metric])
        for g in worst_n(now, medians, n)
    ]
    return BenchmarkView(streams=len(history), since_ms=bench.since, medians=medians, current=now, worst=worst)


def room_benchmark(
    client: Client,
    database: str | None,
    room: str,
    *,
    now_ms: int,
    days: int = BENCHMARK_DAYS,
    gap_ms: int | None = None,
    figures_of: Callable[[StreamSpan], Figures | None] | None = None,
) -> RoomBenchmark:
    """The benchmark to publish for ``room`` at ``now_ms``: medians of its streams of the last ``days``
    that have ended by now (what the store's owner produces to ``room-benchmarks``)."""
    from analytics import build, core
    from warehouse.reports import ReportQueries

    q = ReportQueries(client, database)
    spans = core.split_streams(room, q.activity_minutes(room), core.DEFAULT_GAP_MS if gap_ms is None else gap_ms)
    fig = figures_of or (lambda span: build.span_figures(q, span))
    history = [(span, f) for span in earlier_spans(spans, now_ms, days) if (f := fig(span)) is not None]
    return benchmark_from(room, history, now_ms, days)

