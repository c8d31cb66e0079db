"""The report's charts as plotly.js figures (plain ``{"data": [...], "layout": {...}}`` dicts).

Why plain dicts rather than ``plotly.graph_objects``: the figures are the same JSON either way, and
building them through the validating Python objects took ~1.5 s of the report's 10 s budget on a
2-core machine; dicts take milliseconds.  plotly.js (shipped by the ``plotly`` package) draws them.

Time axes are minutes since the stream's first event, so the previous stream can be drawn on the
same axes as a dotted line.  Money is shown in yuan (cents / 100).
"""

from __future__ import annotations

from typing import Any

from analytics.model import BenchmarkView, MarkerRow, StreamReport
from schemas.headline import HEADLINE_LABELS

Figure = dict[str, Any]
PREVIOUS_LINE = {"dash": "dot", "color": "#999999"}
#: Per-second points of a long stream are more than a screen shows: at most this many are drawn.
MAX_POINTS = 3000


def _since(report: StreamReport, ms: int) -> float:
    return round((ms - report.figures.first_event_ms) / 60_000, 3)


def _figure(title: str, data: list[dict[str, Any]], x_title: str = "minutes since start",
            y_title: str = "", y2_title: str | None = None, **layout: Any) -> Figure:
    lay: dict[str, Any] = {
        "title": {"text": title}, "height": 360,
        "margin": {"l": 60, "r": 60, "t": 50, "b": 45}, "legend": {"orientation": "h", "y": -0.25},
        "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "plot_bgcolor": "#ffffff", **layout,
    }
    if y2_title is not None:
        lay["yaxis2"] = {"title": {"text": y2_title}, "overlaying": "y", "side": "right", "showgrid": False,
                         "rangemode": "tozero"}
    return {"data": data, "layout": lay}


def _line(x: list[Any], y: list[Any], name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name, **extra}


def _thin(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return points[:: max(1, len(points) // MAX_POINTS)]


#: Marker colours by kind; alerts beyond :data:`MAX_ALERT_MARKERS` are left off the charts (they are
#: all in the tables) so that a noisy risk engine does not bury the host's own actions.
MARKER_COLORS = {"sale_open": "#2ca02c", "sale_close": "#7f7f7f", "restock": "#17becf", "sold_out": "#d62728",
                 "pin": "#9467bd", "unpin": "#c5b0d5", "alert": "#ff7f0e", "online_peak": "#1f77b4"}
MAX_ALERT_MARKERS = 20


def chart_markers(cur: StreamReport) -> list[MarkerRow]:
    alerts = [m for m in cur.markers if m.kind == "alert"][:MAX_ALERT_MARKERS]
    return [m for m in cur.markers if m.kind != "alert"] + alerts


def with_markers(fig: Figure, cur: StreamReport) -> Figure:
    """Vertical lines for the key events (sale open / close / restock / sold out, pins, alerts, online
    peak), and one legend entry per kind (a hover point at the top of each line says what it was)."""
    marks = chart_markers(cur)
    if not marks:
        return fig
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": _since(cur, m.ts_ms), "x1": _since(cur, m.ts_ms),
               "y0": 0, "y1": 1, "line": {"color": MARKER_COLORS.get(m.kind, "#333333"), "width": 1, "dash": "dot"}}
              for m in marks]
    fig["layout"]["shapes"] = shapes
    for kind in dict.fromkeys(m.kind for m in marks):
        rows = [m for m in marks if m.kind == kind]
        fig["data"].append({
            "type": "scatter", "mode": "markers", "x": [_since(cur, m.ts_ms) for m in rows], "y": [1.0] * len(rows),
            "yaxis": "y3", "name": kind.replace("_", " "), "marker": {"symbol": "triangle-down", "size": 9,
                                                                      "color": MARKER_COLORS.get(kind, "#333333")},
            "text": [f"{m.kind} {m.sku_id} {m.label}".strip() for m in rows], "hoverinfo": "text+x",
        })
    fig["layout"]["yaxis3"] = {"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True}
    return fig


def online_chart(cur: StreamReport, prev: StreamReport | None) -> Figure:
    data = [_line([_since(cur, t) for t, _ in _thin(cur.online)], [v for _, v in _thin(cur.online)],
                  f"online ({cur.label})")]
    if prev is not None:
        data.append(_line([_since(prev, t) for t, _ in _thin(prev.online)], [v for _, v in _thin(prev.online)],
                          f"online ({prev.label})", line=PREVIOUS_LINE))
    return _figure("Online viewers", data, y_title="viewers online")


def _cumulative_paid(report: StreamReport) -> list[float]:
    total, out = 0, []
    for m in report.minutes:
        total += m.gmv_paid_cents
        out.append(total / 100)
    return out


def gmv_chart(cur: StreamReport, prev: StreamReport | None) -> Figure:
    x = [_since(cur, m.minute_ms) for m in cur.minutes]
    data = [
        {"type": "bar", "x": x, "y": [m.gmv_reserved_cents / 100 for m in cur.minutes], "name": "GMV reserved / min"},
        {"type": "bar", "x": x, "y": [m.gmv_paid_cents / 100 for m in cur.minutes], "name": "GMV paid / min"},
        _line(x, _cumulative_paid(cur), "GMV paid, cumulative", yaxis="y2"),
    ]
    if prev is not None:
        data.append(_line([_since(prev, m.minute_ms) for m in prev.minutes], _cumulative_paid(prev),
                          f"GMV paid, cumulative ({prev.label})", yaxis="y2", line=PREVIOUS_LINE))
    return _figure("GMV over time", data, y_title="¥ per minute", y2_title="¥ cumulative")


def engagement_chart(cur: StreamReport) -> Figure:
    x = [_since(cur, m.minute_ms) for m in cur.minutes]
    data = [
        _line(x, [m.comments for m in cur.minutes], "comments / min"),
        _line(x, [m.likes for m in cur.minutes], "likes / min", yaxis="y2"),
    ]
    return _figure("Comment and like rates", data, y_title="comments / min", y2_title="likes / min")


def funnel_chart(cur: StreamReport) -> Figure:
    f = cur.figures
    data = [{
        "type": "funnel",
        "y": ["entered the room", "shown a product", "tapped a product", "tried to order", "order accepted", "paid"],
        "x": [f.unique_viewers, f.impression_viewers, f.click_viewers, f.attempters, f.buyers, f.paying_buyers],
        "textinfo": "value+percent initial",
    }]
    return _figure("Funnel (people at each step)", data, x_title="", margin={"l": 140, "r": 30, "t": 50, "b": 30})


def product_funnel_chart(cur: StreamReport) -> Figure:
    names = [s.sku_id for s in cur.skus]
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": names, "y": [s.impressions for s in cur.skus], "name": "impressions"},
        {"type": "bar", "x": names, "y": [s.clicks for s in cur.skus], "name": "clicks"},
        {"type": "bar", "x": names, "y": [s.attempts for s in cur.skus], "name": "order attempts"},
        {"type": "bar", "x": names, "y": [s.paid for s in cur.skus], "name": "paid"},
        {"type": "scatter", "mode": "markers+lines", "x": names, "y": [s.ctr for s in cur.skus], "name": "CTR",
         "yaxis": "y2"},
    ]
    fig = _figure("Product funnel per SKU", data, x_title="SKU", y_title="events", y2_title="CTR",
                  barmode="group")
    fig["layout"]["yaxis"]["type"] = "log"
    return fig


def sources_chart(cur: StreamReport) -> Figure:
    names = [r.source.replace("_", " ") for r in cur.sources]
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": names, "y": [r.follower_entries for r in cur.sources], "name": "entries by followers"},
        {"type": "bar", "x": names, "y": [r.entries - r.follower_entries for r in cur.sources],
         "name": "entries by others"},
        {"type": "scatter", "mode": "markers", "x": names, "y": [r.conversion for r in cur.sources],
         "name": "conversion (buyers / viewers)", "yaxis": "y2", "marker": {"size": 11}},
    ]
    return _figure("Traffic sources", data, x_title="source", y_title="entries", y2_title="conversion",
                   barmode="stack")


def benchmark_charts(cur: StreamReport, view: BenchmarkView | None) -> list[tuple[str, Figure]]:
    """One small chart per worst metric: its value in each earlier stream, this stream, the benchmark."""
    if view is None:
        return []
    out = []
    for i, t in enumerate(view.worst):
        label, kind = HEADLINE_LABELS[t.metric]
        scale = 0.01 if kind == "money" else 1 / 60_000 if kind == "duration" else 100 if kind == "percent" else 1
        x = [sid for sid, _ in t.trend] + [cur.label.removeprefix("stream ")]
        y = [None if v is None else v * scale for _, v in t.trend] + [None if t.value is None else t.value * scale]
        unit = {"money": "¥", "duration": "minutes", "percent": "%"}.get(kind, "")
        data = [_line(x, y, label, mode="lines+markers"),
                {"type": "scatter", "mode": "markers", "x": x[-1:], "y": y[-1:], "name": "this stream",
                 "marker": {"size": 12, "color": "#d62728" if t.level == "red" else "#ff7f0e"}}]
        fig = _figure(f"{label}: {t.level} against the benchmark", data, x_title="stream", y_title=unit)
        if t.benchmark is not None:
            fig["layout"]["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                                        "y0": t.benchmark * scale, "y1": t.benchmark * scale,
                                        "line": {"dash": "dash", "color": "#555555"}}]
        fig["layout"]["xaxis"]["type"] = "category"
        out.append((f"chart-bench-{i}", fig))
    return out


def sentiment_chart(cur: StreamReport) -> Figure:
    rows = [m for m in cur.minutes if m.scored_comments]
    x = [_since(cur, m.minute_ms) for m in rows]
    data = [
        {"type": "bar", "x": x, "y": [m.negative_share for m in rows], "name": "negative share", "opacity": 0.5},
        _line(x, [m.sentiment_avg for m in rows], "average score", yaxis="y2"),
    ]
    if cur.spikes:
        data.append({"type": "scatter", "mode": "markers", "x": [_since(cur, s.minute_ms) for s in cur.spikes],
                     "y": [s.share for s in cur.spikes], "name": "negative spike",
                     "marker": {"size": 11, "color": "#d62728"}})
    fig = _figure("Sentiment timeline", data, y_title="negative share", y2_title="score (-1..1)")
    fig["layout"]["yaxis"]["range"] = [0, 1]
    fig["layout"]["yaxis2"]["range"] = [-1, 1]
    return fig


def sku_chart(cur: StreamReport) -> Figure:
    names = [s.sku_id for s in cur.skus]
    data = [
        {"type": "bar", "x": names, "y": [s.units_accepted for s in cur.skus], "name": "units accepted"},
        {"type": "bar", "x": names, "y": [s.units_paid for s in cur.skus], "name": "units paid"},
        {"type": "bar", "x": names, "y": [s.stock for s in cur.skus], "name": "stock"},
    ]
    return _figure("Sales per SKU", data, x_title="SKU", y_title="units", barmode="group")


def all_charts(cur: StreamReport, prev: StreamReport | None) -> list[tuple[str, Figure]]:
    """(element id, figure) of every chart, in page order; the trends carry the key-event markers."""
    return [
        ("chart-online", with_markers(online_chart(cur, prev), cur)),
        ("chart-gmv", with_markers(gmv_chart(cur, prev), cur)),
        ("chart-engagement", with_markers(engagement_chart(cur), cur)),
        ("chart-funnel", funnel_chart(cur)),
        ("chart-product-funnel", product_funnel_chart(cur)),
        ("chart-sources", sources_chart(cur)),
        ("chart-sentiment", sentiment_chart(cur)),
        ("chart-skus", sku_chart(cur)),
    ]
