"""The report as ONE self-contained HTML file: tables, plotly charts, plotly.js inlined once, no CDN.

Safety, since comment texts, SKU titles and alert messages are whatever viewers and operators
typed: every value in the markup goes through :func:`html.escape`, and every JSON document placed
inside a ``<script>`` escapes ``<``, ``>``, ``&`` and the JavaScript line separators, so no text can
close the script element or open a new one.  Viewer ids in the store are already pseudonyms.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from analytics.charts import all_charts, benchmark_charts
from analytics.model import Comparison, Report, StreamReport, iso
from schemas.headline import HEADLINE_LABELS

#: Rejection reasons that come from the risk rules (streams/flash_sale/risk.py), not from stock or timing.
ABUSE_REASONS = frozenset({"rate_limited", "duplicate", "blocked", "invalid"})

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

#: Figure name -> (label, formatter kind).
FIGURE_LABELS: dict[str, tuple[str, str]] = {
    "duration_ms": ("Duration", "duration"),
    "peak_online": ("Peak online", "count"),
    "avg_online": ("Average online", "float"),
    "unique_viewers": ("Unique viewers", "count"),
    "avg_watch_ms": ("Average watch time", "duration"),
    "comments": ("Comments", "count"),
    "commenters": ("Commenters", "count"),
    "likes": ("Likes", "count"),
    "order_attempts": ("Order attempts", "count"),
    "attempters": ("People who tried to order", "count"),
    "accepted": ("Orders accepted", "count"),
    "rejected": ("Orders rejected", "count"),
    "paid": ("Orders paid", "count"),
    "cancelled": ("Orders cancelled", "count"),
    "expired": ("Orders expired", "count"),
    "units": ("Units reserved", "count"),
    "gmv_reserved_cents": ("GMV reserved", "money"),
    "gmv_paid_cents": ("GMV paid", "money"),
    "buyers": ("Buyers (accepted order)", "count"),
    "paying_buyers": ("Paying buyers", "count"),
    "conversion_rate": ("Conversion (buyers / viewers)", "percent"),
    "gpm_cents": ("GPM (paid GMV per 1,000 viewers)", "money"),
    "aov_cents": ("AOV (paid GMV / paid order)", "money"),
    "multi_order_buyers": ("Buyers with 2+ orders", "count"),
    "returning_buyers": ("Repeat buyers (bought in an earlier stream)", "count"),
    "scored_comments": ("Scored comments", "count"),
    "sentiment_avg": ("Average sentiment (-1..1)", "score"),
    "negative_share": ("Negative comment share", "percent"),
    "entries": ("Entries (joins)", "count"),
    "follower_entries": ("Entries by followers", "count"),
    "impressions": ("Product impressions", "count"),
    "impression_viewers": ("Viewers shown a product", "count"),
    "clicks": ("Product clicks", "count"),
    "click_viewers": ("Viewers who tapped a product", "count"),
    "ctr": ("Product click-through rate", "percent"),
    "new_followers": ("New followers", "count"),
    "shares": ("Shares", "count"),
}


#: Nothing may load from the network: the page is complete in itself (plotly needs inline script and eval).
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


def safe_json(value: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def fmt_duration(ms: float) -> str:
    seconds = round(ms / 1000)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt(kind: str, value: float | int | None) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "money":
        return f"¥{value / 100:,.2f}"
    if kind == "percent":
        return f"{value * 100:.2f}%"
    if kind == "duration":
        return fmt_duration(value)
    if kind == "score":
        return f"{value:+.3f}"
    return f"{value:,.1f}"


def fmt_change(c: Comparison) -> str:
    change = c.change
    return "–" if change is None else f"{change * 100:+.1f}%"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def summary_table(report: Report) -> str:
    prev = report.previous
    headers = ["Figure", report.current.label, prev.label if prev else "previous stream", "Change"]
    by_name = {c.name: c for c in report.comparison}
    rows = []
    for name, (label, kind) in FIGURE_LABELS.items():
        cur = getattr(report.current.figures, name)
        before = getattr(prev.figures, name) if prev else None
        change = fmt_change(by_name[name]) if name in by_name else "–"
        rows.append([label, fmt(kind, cur), fmt(kind, before), change])
    return table(headers, rows, "summary")


def sku_table(cur: StreamReport) -> str:
    rows = [
        [
            s.sku_id, s.title, fmt("money", s.price_cents), fmt("count", s.stock), fmt("count", s.impressions),
            fmt("count", s.clicks), fmt("percent", s.ctr), fmt("count", s.attempts),
            fmt("count", s.accepted), fmt("percent", s.accept_rate), fmt("count", s.paid),
            fmt("count", s.cancelled), fmt("count", s.expired), fmt("count", s.units_accepted),
            fmt("money", s.gmv_paid_cents), fmt("percent", s.conversion),
            "not sold out" if s.sell_out_ms is None else fmt_duration(s.sell_out_ms),
            ", ".join(f"{reason} {n:,}" for reason, n in s.rejections.items()) or "–",
        ]
        for s in cur.skus
    ]
    headers = ["SKU", "Title", "Price", "Stock", "Impressions", "Clicks", "CTR", "Attempts", "Accepted",
               "Accept rate", "Paid", "Cancelled", "Expired", "Units", "GMV paid", "Paid per click", "Sell-out time",
               "Rejections"]
    return table(headers, rows, "skus")


def minute_table(cur: StreamReport) -> str:
    rows = [
        [iso(m.minute_ms)[11:16], m.online_peak, m.comments, m.likes, m.order_attempts, m.accepted, m.paid,
         fmt("money", m.gmv_reserved_cents), fmt("money", m.gmv_paid_cents), m.scored_comments,
         fmt("percent", m.negative_share), fmt("score", m.sentiment_avg)]
        for m in cur.minutes
    ]
    headers = ["Minute (UTC)", "Peak online", "Comments", "Likes", "Attempts", "Accepted", "Paid", "GMV reserved",
               "GMV paid", "Scored", "Negative", "Sentiment"]
    return table(headers, rows, "minutes")


def sources_table(cur: StreamReport) -> str:
    rows = [[r.source.replace("_", " "), fmt("count", r.entries), fmt("count", r.follower_entries),
             fmt("count", r.non_follower_entries), fmt("count", r.viewers), fmt("count", r.buyers),
             fmt("percent", r.conversion)] for r in cur.sources]
    headers = ["Source", "Entries", "by followers", "by non-followers", "Viewers (first entry)", "Buyers",
               "Conversion"]
    return table(headers, rows, "sources") if rows else "<p>No traffic sources recorded.</p>"


def benchmark_section(report: Report, chart_ids: list[str]) -> str:
    view = report.benchmark
    if view is None:
        return "<p>No earlier stream of this room in the benchmark window: nothing to compare with yet.</p>"
    rows = []
    for t in view.worst:
        label, kind = HEADLINE_LABELS[t.metric]
        gap = "–" if t.gap is None else f"{t.gap * 100:+.1f}%"
        rows.append([label, fmt(kind, t.value), fmt(kind, t.benchmark), gap, t.level])
    intro = (f"<p>Median of the room's {view.streams} earlier stream(s) since {_e(iso(view.since_ms))}; "
             "the three metrics furthest below it (red: 20 % or more below).</p>")
    charts = "".join(f'<div class="chart small" id="{_e(cid)}"></div>' for cid in chart_ids)
    return intro + table(["Metric", "This stream", "Benchmark", "Gap", "Level"], rows, "benchmark") + charts


def markers_table(cur: StreamReport) -> str:
    rows = [[iso(m.ts_ms)[11:19], m.kind.replace("_", " "), m.sku_id, m.label] for m in cur.markers]
    return table(["Time (UTC)", "Event", "SKU", "Detail"], rows, "markers") if rows else "<p>No key events.</p>"


def host_table(cur: StreamReport) -> str:
    rows = [[iso(t)[11:19], host, action.replace("_", " "), sku, stock or "", fmt("money", price) if price else "",
             title] for t, action, sku, stock, price, title, host in cur.host_actions]
    return table(["Time (UTC)", "Host", "Action", "SKU", "Stock", "Price", "Title"], rows, "host") \
        if rows else "<p>No host actions recorded.</p>"


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{body}</section>'


def render_html(report: Report, plotly_js: Callable[[], str] | None = None) -> str:
    """The whole page.  ``plotly_js`` returns the library's source (default: plotly's bundled copy)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs
    cur, prev = report.current, report.previous
    bench_charts = benchmark_charts(cur, report.benchmark)
    charts = all_charts(cur, prev)
    main_ids = {"chart-product-funnel", "chart-sources"}
    chart_divs = "".join(f'<div class="chart" id="{_e(cid)}"></div>' for cid, _ in charts if cid not in main_ids)
    charts = charts + bench_charts
    chart_data = safe_json([{"id": cid, "data": fig["data"], "layout": fig["layout"]} for cid, fig in charts])
    f = cur.figures
    headline = (
        f"<p class='meta'>Room <b>{_e(cur.room_id)}</b> · {_e(cur.label)} · {_e(iso(f.first_event_ms))} → "
        f"{_e(iso(f.last_event_ms))} · previous: {_e(prev.label if prev else 'none')} · "
        f"generated {_e(iso(report.generated_ms))}</p>"
    )
    comments = "".join(
        f"<h3>{_e(title)}</h3>"
        + table(["Time (UTC)", "Viewer", "Comment", "Score"],
                [[iso(c.ts_ms)[11:19], c.user, c.text, f"{c.score:+.3f}"] for c in rows], "comments")
        for title, rows in (("Most positive", cur.top_positive), ("Most negative", cur.top_negative))
    )
    spikes = table(["Minute (UTC)", "Negative", "Scored", "Share"],
                   [[iso(s.minute_ms)[11:16], s.negative, s.scored, fmt("percent", s.share)] for s in cur.spikes]) \
        if cur.spikes else "<p>No negative spikes.</p>"
    words_note = "" if cur.hot_words_exact else "<p class='note'>From the most frequent distinct comments.</p>"
    abuse: Counter[str] = Counter()
    for sku in cur.skus:
        abuse.update({r: n for r, n in sku.rejections.items() if r in ABUSE_REASONS})
    abuse_note = ("<p>Order attempts refused by the risk rules: "
                  + (", ".join(f"{_e(r)} {n:,}" for r, n in sorted(abuse.items())) or "none") + ".</p>")
    more = f"; the first {len(cur.alerts)} below" if cur.alerts_total > len(cur.alerts) else ""
    alerts = (
        table(["Kind", "Level", "Alerts"], cur.alert_kinds)
        + f"<p>{cur.alerts_total:,} alerts in total{more}.</p>"
        + table(["Time (UTC)", "Kind", "Level", "Message", "Value", "Threshold"],
                [[iso(a.ts_ms)[11:19], a.kind, a.level, a.message, a.value, a.threshold] for a in cur.alerts],
                "alerts")
    ) if cur.alerts_total else "<p>No risk alerts.</p>"
    risk = abuse_note + alerts
    body = "".join([
        _section("Summary", summary_table(report), "summary"),
        _section("Against the room's benchmark", benchmark_section(report, [cid for cid, _ in bench_charts]),
                 "benchmark"),
        _section("Charts", chart_divs, "charts"),
        _section("Product funnel", '<div class="chart" id="chart-product-funnel"></div>' + sku_table(cur), "skus"),
        _section("Traffic sources", '<div class="chart" id="chart-sources"></div>' + sources_table(cur), "sources"),
        _section("Key events", markers_table(cur), "markers"),
        _section("Host actions (audit trail)", host_table(cur), "host"),
        _section("Negative sentiment spikes", spikes, "spikes"),
        _section("Top comments", comments, "comments"),
        _section("Hot words", words_note + table(["Word", "Count"], cur.hot_words, "words"), "words"),
        _section("Risk events", risk, "risk"),
        _section("Per minute", f"<details open><summary>{len(cur.minutes)} minutes</summary>"
                 f"{minute_table(cur)}</details>", "minutes"),
    ])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>Stream report · {_e(cur.room_id)} · {_e(cur.label)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1400px}}
h1{{margin-bottom:4px}} .meta{{color:#555}} table{{border-collapse:collapse;margin:8px 0 18px;font-size:14px}}
th,td{{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}}
th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
table.comments td:nth-child(3),table.alerts td:nth-child(4){{text-align:left;max-width:600px;word-break:break-word}}
.chart{{width:100%;min-height:360px;margin-bottom:12px}} .note{{color:#777;font-size:13px}}
.chart.small{{display:inline-block;width:32%;min-width:320px}}
</style></head><body>
<h1>Post-stream report</h1>{headline}{body}
<script>{plotly_js()}</script>
<script>
(function(){{
  var charts = {chart_data};
  charts.forEach(function(c){{ Plotly.newPlot(c.id, c.data, c.layout, {{displaylogo:false, responsive:true}}); }});
  document.body.setAttribute("data-charts-rendered", String(charts.length));
}})();
</script>
</body></html>
"""
