"""The report's charts as plotly.js figures (plain ``{"data": [...], "layout": {...}}`` dicts).

Why plain dicts rather than ``plotly.graph_objects``: the figures are the same JSON either way, and
building them through the validating Python objects took ~1.5 s of the report's 10 s budget on a
2-core machine; dicts take milliseconds.  plotly.js (shipped by the ``plotly`` package) draws them.

Time axes are minutes since the stream's first event, so the previous stream can be drawn on the
same axes as a dotted line.  Money is shown in yuan (cents / 100).
"""

from __future__ import annotations

from typing import Any

from analytics.model import StreamReport

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


def _line(x: list[float], y: list[Any], name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name, **extra}


def _thin(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return points[:: max(1, len(points) // MAX_POINTS)]


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
        "y": ["viewers", "commenters", "tried to order", "order accepted", "paid"],
        "x": [f.unique_viewers, f.commenters, f.attempters, f.buyers, f.paying_buyers],
        "textinfo": "value+percent initial",
    }]
    return _figure("Funnel (people at each step)", data, x_title="", margin={"l": 120, "r": 30, "t": 50, "b": 30})


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
    """(element id, figure) of every chart, in page order."""
    return [
        ("chart-online", online_chart(cur, prev)),
        ("chart-gmv", gmv_chart(cur, prev)),
        ("chart-engagement", engagement_chart(cur)),
        ("chart-funnel", funnel_chart(cur)),
        ("chart-sentiment", sentiment_chart(cur)),
        ("chart-skus", sku_chart(cur)),
    ]
