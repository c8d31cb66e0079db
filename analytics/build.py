"""Assemble a :class:`~analytics.model.Report` from the warehouse: run the queries, hand the rows to
the pure core.  The thin shell between :mod:`warehouse.reports` and :mod:`analytics.core`."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analytics import benchmark, core
from analytics.model import AlertRow, Figures, Report, StreamReport, StreamSpan, TopComment
from warehouse.reports import ReportQueries, Window

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


class NothingToReport(LookupError):
    """The room has no activity in the requested stream or window."""


@dataclass(frozen=True)
class Options:
    top_comments: int = 10
    hot_words: int = 30
    #: Distinct comment texts tokenised for hot words (the most frequent first).
    hot_word_texts: int = 2_000
    alerts: int = 200
    host_actions: int = 2_000
    gap_ms: int = core.DEFAULT_GAP_MS
    benchmark_days: int = 14


def list_streams(
    client: Client, database: str | None, room: str, gap_ms: int = core.DEFAULT_GAP_MS
) -> list[StreamSpan]:
    """Every stream of ``room``, oldest first."""
    return core.split_streams(room, ReportQueries(client, database).activity_minutes(room), gap_ms)


def stream_report(
    q: ReportQueries,
    window: Window,
    label: str,
    options: Options,
    tokenize: Callable[[str], Iterable[str]],
    *,
    full: bool = True,
) -> StreamReport | None:
    """Everything about one window, or None when nothing happened in it.  ``full=False`` (the
    previous stream, shown only as figures and curves) skips SKUs, comments, hot words and alerts."""
    presence = q.presence_seconds(window)
    comments, likes, orders = q.comment_minutes(window), q.like_minutes(window), q.order_minutes(window)
    span = core.event_span(presence, comments, likes, orders)
    if span is None:
        return None
    first, last = span
    viewers, initial, watch = q.viewers(window, last)
    online = core.online_series(presence, initial, first, last)
    minutes = core.dense_minutes(
        window.start_ms, window.end_ms, online, comments, likes, orders, q.result_minutes(window),
        q.sentiment_minutes(window), q.console_minutes(window),
    )
    outcomes = q.sku_outcomes(window)
    rejected = sum(n for _, status, _, n, _, _ in outcomes if status == "rejected")
    figures = core.figures(
        first_ms=first, last_ms=last, online=online, viewers=viewers, watch_ms=watch, minutes=minutes,
        people={**q.people(window), **q.funnel_people(window)}, rejected=rejected,
    )
    report = StreamReport(
        room_id=window.room_id, start_ms=window.start_ms, end_ms=window.end_ms, label=label, figures=figures,
        minutes=minutes, online=online, skus=[], spikes=core.negative_spikes(minutes), top_positive=[],
        top_negative=[], hot_words=[], hot_words_exact=True, alerts=[], alerts_total=0, alert_kinds=[],
    )
    if not full:
        return report
    texts, distinct = q.comment_texts(window, options.hot_word_texts)
    alerts, alerts_total = q.alerts(window, options.alerts)
    alert_rows = [AlertRow(*r) for r in alerts]
    sold_out = q.sold_out_at(window)
    host_actions = q.host_actions(window, options.host_actions)
    skus = core.sku_figures(outcomes, q.sku_attempts(window), q.sku_configs(window), sold_out)
    return dataclasses.replace(
        report,
        skus=core.with_funnel(skus, q.sku_funnel(window)),
        sources=core.source_rows(q.entries_by_source(window), q.conversion_by_source(window)),
        markers=core.markers(host_actions, sold_out, alert_rows, figures.peak_online_at_ms, figures.peak_online),
        host_actions=host_actions,
        top_positive=[TopComment(*r) for r in q.top_comments(window, "positive", options.top_comments)],
        top_negative=[TopComment(*r) for r in q.top_comments(window, "negative", options.top_comments)],
        hot_words=core.hot_words(texts, tokenize, options.hot_words),
        hot_words_exact=distinct <= options.hot_word_texts,
        alerts=alert_rows,
        alerts_total=alerts_total,
        alert_kinds=q.alert_kinds(window),
    )


def span_figures(q: ReportQueries, span: StreamSpan) -> Figures | None:
    """The headline figures of one stream (no SKUs, comments or alerts)."""
    report = stream_report(q, Window(span.room_id, span.start_ms, span.end_ms), f"stream {span.stream_id}",
                           Options(), lambda _text: (), full=False)
    return None if report is None else report.figures


def build_report(
    client: Client,
    database: str | None,
    room: str,
    *,
    stream_id: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    compare: str | None = None,
    options: Options | None = None,
    tokenize: Callable[[str], Iterable[str]] | None = None,
) -> Report:
    """The report of one stream (``stream_id``; default the latest) or of ``[start_ms, end_ms)``,
    side by side with the room's previous stream, or with the earlier stream ``compare``, and against
    the room's benchmark (the median of its streams of the ``benchmark_days`` before this one)."""
    options = options or Options()
    if tokenize is None:
        from analytics import hotwords

        # Loading jieba's dictionary takes ~1 s: do it while the engine answers the queries.
        threading.Thread(target=hotwords.warm_up, name="jieba-warm-up", daemon=True).start()
        tokenize = hotwords.tokenize_cached
    q = ReportQueries(client, database)
    spans = core.split_streams(room, q.activity_minutes(room), options.gap_ms)
    if start_ms is not None or end_ms is not None:
        if start_ms is None or end_ms is None:
            raise ValueError("a time range needs both --from and --to")
        window = Window(room, start_ms, end_ms)
        label = "window"
    else:
        if not spans:
            raise NothingToReport(f"room {room!r} has no recorded activity")
        span = core.find_stream(spans, stream_id) if stream_id else spans[-1]
        window = Window(room, span.start_ms, span.end_ms)
        label = f"stream {span.stream_id}"
    current = stream_report(q, window, label, options, tokenize)
    if current is None:
        raise NothingToReport(f"room {room!r} has no activity in the requested window")
    if compare is not None:
        prev_span: StreamSpan | None = core.find_stream(spans, compare)
        assert prev_span is not None
        if prev_span.start_ms >= window.start_ms:
            raise ValueError(f"--compare needs an earlier stream than {label.removeprefix('stream ')}, "
                             f"got {compare}")
    else:
        prev_span = core.previous_stream(spans, window.start_ms)
    reports: dict[tuple[int, int], StreamReport | None] = {}

    def earlier(span: StreamSpan) -> StreamReport | None:
        key = (span.start_ms, span.end_ms)
        if key not in reports:
            reports[key] = stream_report(q, Window(room, span.start_ms, span.end_ms), f"stream {span.stream_id}",
                                         options, tokenize, full=False)
        return reports[key]

    previous = earlier(prev_span) if prev_span is not None else None
    history = [(s, r.figures) for s in benchmark.earlier_spans(spans, window.start_ms, options.benchmark_days)
               if (r := earlier(s)) is not None]
    return Report(
        current=current,
        previous=previous,
        comparison=core.compare(current.figures, previous.figures if previous else None),
        generated_ms=time.time_ns() // 1_000_000,
        benchmark=benchmark.benchmark_view(current.figures, history, room, window.start_ms, options.benchmark_days)
        if history else None,
    )
