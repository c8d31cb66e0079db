"""The report's tables as CSV files (UTF-8 with BOM, so spreadsheet programs read Chinese right).

Values are raw: money in cents, times in epoch ms and ISO, durations in ms.

Formula injection: EVERY text cell, whatever its column, that starts with ``= + - @``, a tab or CR
(or their full-width forms, which some spreadsheets also read as operators) gets a leading
apostrophe, the usual guard when an operator opens the file in a spreadsheet.  The guard sits in
the one function that writes rows (:func:`_write`), not at each column: an id column was once
written bare (the SKU id ``-1-1``, issue 14 failure 12), and a column added later is guarded
without anyone remembering to.  Numbers stay numbers (a negative change is ``-0.25``, harmless).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from analytics.model import Figures, Report, iso

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def cell_text(text: str) -> str:
    """Text made harmless for spreadsheets (see module docstring)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: object) -> object:
    """One CSV cell: text guarded, None empty, numbers as they are."""
    if isinstance(value, str):
        return cell_text(value)
    return "" if value is None else value


def _write(path: Path, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows([cell(v) for v in row] for row in rows)


def export_csv(report: Report, directory: str | Path) -> list[Path]:
    """Write every table into ``directory`` (created if missing); returns the files written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cur, prev = report.current, report.previous
    files: list[tuple[str, list[str], list[Sequence[object]]]] = []

    previous = prev.figures if prev else None
    files.append(("summary.csv", ["figure", "current", "previous"], [
        [name, getattr(cur.figures, name), None if previous is None else getattr(previous, name)]
        for name in Figures.names()
    ]))
    minute_fields = list(asdict(cur.minutes[0])) if cur.minutes else ["minute_ms"]
    files.append(("minutes.csv", ["minute_utc", *minute_fields], [
        [iso(m.minute_ms), *asdict(m).values()] for m in cur.minutes
    ]))
    files.append(("online.csv", ["second_ms", "online"], [list(p) for p in cur.online]))
    sku_fields = ["sku_id", "title", "price_cents", "stock", "starts_at_ms", "ends_at_ms", "attempts", "accepted",
                  "rejected", "paid", "cancelled", "expired", "units_accepted", "units_paid", "gmv_paid_cents",
                  "accept_rate", "sold_out_at_ms", "sell_out_ms", "impressions", "impressions_pinned",
                  "impression_viewers", "clicks", "clicks_pinned", "click_viewers", "ctr", "conversion"]
    files.append(("skus.csv", sku_fields, [
        [getattr(s, f) for f in sku_fields]
        for s in cur.skus
    ]))
    files.append(("rejections.csv", ["sku_id", "reason", "orders"], [
        [s.sku_id, reason, n] for s in cur.skus for reason, n in s.rejections.items()
    ]))
    files.append(("sentiment_spikes.csv", ["minute_ms", "minute_utc", "negative", "scored", "share"], [
        [s.minute_ms, iso(s.minute_ms), s.negative, s.scored, s.share] for s in cur.spikes
    ]))
    files.append(("top_comments.csv", ["kind", "ts_ms", "time_utc", "viewer", "text", "score"], [
        [kind, c.ts_ms, iso(c.ts_ms), c.user, c.text, c.score]
        for kind, rows in (("positive", cur.top_positive), ("negative", cur.top_negative)) for c in rows
    ]))
    files.append(("hot_words.csv", ["word", "count"], [[w, n] for w, n in cur.hot_words]))
    files.append(("alerts.csv", ["ts_ms", "time_utc", "kind", "level", "message", "value", "threshold"], [
        [a.ts_ms, iso(a.ts_ms), a.kind, a.level, a.message, a.value, a.threshold] for a in cur.alerts
    ]))
    files.append(("comparison.csv", ["figure", "current", "previous", "change"], [
        [c.name, c.current, c.previous, c.change]
        for c in report.comparison
    ]))
    files.append(("sources.csv", ["source", "entries", "follower_entries", "non_follower_entries",
                                  "unknown_entries", "viewers", "buyers", "conversion"], [
        [r.source, r.entries, r.follower_entries, r.non_follower_entries, r.unknown_entries, r.viewers, r.buyers,
         r.conversion] for r in cur.sources
    ]))
    files.append(("markers.csv", ["ts_ms", "time_utc", "kind", "sku_id", "label"], [
        [m.ts_ms, iso(m.ts_ms), m.kind, m.sku_id, cell_text(m.label)] for m in cur.markers
    ]))
    files.append(("host_actions.csv", ["ts_ms", "time_utc", "action", "sku_id", "stock", "price_cents", "title",
                                       "host_id"], [
        [t, iso(t), action, sku, stock, price, cell_text(title), host]
        for t, action, sku, stock, price, title, host in cur.host_actions
    ]))
    bench = report.benchmark
    files.append(("benchmark.csv", ["metric", "current", "benchmark", "gap", "level", "streams"], [
        [t.metric, t.value, t.benchmark, t.gap, t.level, bench.streams] for t in bench.worst
    ] if bench else []))
    files.append(("benchmark_trend.csv", ["metric", "stream_id", "value"], [
        [t.metric, sid, "" if v is None else v] for t in bench.worst for sid, v in t.trend
    ] if bench else []))
    paths = []
    for name, headers, rows in files:
        path = out / name
        _write(path, headers, rows)
        paths.append(path)
    return paths
