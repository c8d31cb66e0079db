"""The streamer's console of one room as it crosses Kafka (``room-console``) and the websocket.

One definition for the console job that publishes it, the gateway that forwards it to hosts and
the exported JSON Schema.  Why a view of its own and not the job's state: the state holds sets and
per-member bookkeeping (see :mod:`streams.counters.console`); this is only what a dashboard draws,
with the derived figures (CTR, conversion, the benchmark diagnosis) already computed and their
floats rounded for display (:func:`round_for_display`).  Rows are
arrays (``array_like``): a per-minute row or a per-SKU row is a handful of numbers, and a dashboard
that redraws every second should not receive the column names with each one.

Not stored in ClickHouse: the post-stream report computes every figure from the raw events, so a
stored copy of this view would be a second, possibly diverging, answer.

:func:`delta` and :func:`apply_delta` are the wire rule for sending only what changed between two
views: the gateway sends the delta in each update and the dashboard applies it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from schemas.base import MAX_TEXT_CHARS, SCHEMA_VERSION, Cents, Count, Event, Id, TimestampMs, Version

Ratio = Annotated[float, msgspec.Meta(ge=0.0, description="A ratio, None where its denominator is zero.")]
Metric = Annotated[float, msgspec.Meta(ge=0.0)]
Label = Annotated[str, msgspec.Meta(max_length=800)]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=4 * MAX_TEXT_CHARS)]
MarkerKind = Literal["sale_open", "sale_close", "restock", "sold_out", "pin", "unpin", "alert", "online_peak"]
MINUTE_MS = 60_000


class SkuRow(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One product's funnel; ``ctr = clicks / impressions``, ``conversion = paid / clicks``."""

    impressions: Count
    clicks: Count
    ctr: Ratio | None
    attempts: Count
    accepted: Count
    paid: Count
    gmv_paid_cents: Cents
    conversion: Ratio | None


class MarkerView(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A key event to draw on every trend chart, at event time ``ts``."""

    ts: TimestampMs
    kind: MarkerKind
    sku_id: Id | None = None
    label: Label = ""


class SeriesView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Dense per-minute rows over the whole stream: row i is the minute ``start + i * step``."""

    start: TimestampMs | None
    step: Annotated[int, msgspec.Meta(ge=1, le=86_400_000)] = MINUTE_MS
    fields: list[Annotated[str, msgspec.Meta(max_length=64)]]
    rows: list[list[Count]]


class Totals(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    viewers: Count
    entries: Count
    impressions: Count
    clicks: Count
    ctr: Ratio | None
    attempts: Count
    accepted: Count
    paid: Count
    gmv_paid_cents: Cents
    buyers: Count
    follows: Count
    shares: Count
    comments: Count
    likes: Count
    watch_ms: Count
    avg_watch_ms: Metric | None
    peak_online: Count


class Followers(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Entries of viewers who already follow the room, who do not, and whose client did not say."""

    follower: Count
    non_follower: Count
    unknown: Count


class Diagnosis(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One headline metric against the room's benchmark (worst first in :attr:`RoomConsoleView.diagnosis`)."""

    metric: Annotated[str, msgspec.Meta(max_length=64)]
    value: float
    benchmark: float
    gap: float
    level: Literal["red", "yellow", "green"]


class RoomConsoleView(Event, tag="room_console", kw_only=True, forbid_unknown_fields=True):
    """Everything the host's console shows of one room. Keyed by room_id on a compacted topic.

    ``ts`` is when the console job published it (wall clock); ``event_ts`` the newest viewer event
    it includes (None before the first one).  ``worst`` names the headline metric furthest below
    the benchmark (what the dashboard paints red), None when none is below it.
    """

    v: Version = SCHEMA_VERSION
    room_id: Id
    event_ts: TimestampMs | None = None
    pinned: Id | None = None
    totals: Totals
    skus: dict[Id, SkuRow] = msgspec.field(default_factory=dict)
    sku_fields: list[Annotated[str, msgspec.Meta(max_length=64)]] = msgspec.field(default_factory=list)
    sources: dict[Annotated[str, msgspec.Meta(max_length=64)], Count] = msgspec.field(default_factory=dict)
    followers: Followers
    series: SeriesView
    markers: list[MarkerView] = msgspec.field(default_factory=list)
    markers_dropped: Count = 0
    headline: dict[Annotated[str, msgspec.Meta(max_length=64)], float | None] = msgspec.field(default_factory=dict)
    benchmark: dict[Annotated[str, msgspec.Meta(max_length=64)], float | None] | None = None
    diagnosis: list[Diagnosis] = msgspec.field(default_factory=list)
    worst: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    hot_words: list[tuple[Word, Count]] = msgspec.field(default_factory=list)
    ts: TimestampMs


#: Decimal places of a ratio on the wire (CTR 0.0834 = 8.34 %), significant digits of a metric.
RATIO_DECIMALS = 4
METRIC_DIGITS = 4


def _sig(value: float | None, digits: int = METRIC_DIGITS) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def round_for_display(body: dict[str, Any]) -> dict[str, Any]:
    """A console body with its floats cut to what a screen shows: ratios to :data:`RATIO_DECIMALS`
    places, metrics to :data:`METRIC_DIGITS` significant digits.  Why: every update repeats the floats
    that moved, and ``0.08002394731590501`` costs 19 bytes where ``0.08`` says the same on a dashboard
    (the report recomputes exact figures from the raw events).  Rounds in place; returns ``body``."""
    for row in body.get("skus", {}).values():
        for i in (2, 7):  # ctr, conversion (SkuRow order)
            if row[i] is not None:
                row[i] = round(row[i], RATIO_DECIMALS)
    totals = body.get("totals")
    if totals is not None:
        if totals.get("ctr") is not None:
            totals["ctr"] = round(totals["ctr"], RATIO_DECIMALS)
        totals["avg_watch_ms"] = _sig(totals.get("avg_watch_ms"), 6)
    for key in ("headline", "benchmark"):
        metrics = body.get(key)
        if metrics is not None:
            body[key] = {name: _sig(value) for name, value in metrics.items()}
    for d in body.get("diagnosis", ()):
        d["value"], d["benchmark"], d["gap"] = _sig(d["value"]), _sig(d["benchmark"]), round(d["gap"], 3)
    return body


#: Wire types that are carried on a topic but not stored (no ClickHouse table), by tag.
UNSTORED_TYPES: dict[str, type[Event]] = {"room_console": RoomConsoleView}

#: Fields of the view that are not part of what a page draws.
_ENVELOPE = ("type", "v")


def view_body(view: RoomConsoleView) -> dict[str, Any]:
    """The view as plain JSON data (what :func:`delta` compares and a page holds)."""
    body: dict[str, Any] = msgspec.to_builtins(view)
    for key in _ENVELOPE:
        body.pop(key, None)
    return body


# ---- deltas: what goes on the wire -----------------------------------------------------------

#: Keys whose values are maps sent entry by entry (entries never disappear).
_MAP_KEYS = ("skus", "sources", "totals", "headline", "followers")
#: Keys whose values are lists sent from their first changed item (``from`` + ``items``).
_LIST_KEYS = ("markers", "hot_words")


def _common_prefix(a: list[Any], b: list[Any]) -> int:
    i, n = 0, min(len(a), len(b))
    while i < n and a[i] == b[i]:
        i += 1
    return i


def delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``old`` to ``new`` (two console bodies); ``old`` None = everything.

    Maps (SKUs, sources, totals, headline, followers) carry only their changed entries; the series
    carries the rows from the first one that changed (usually the current minute alone) with
    ``from`` = its index; markers and hot words likewise (``from`` = the first new or changed item:
    new markers are appended and only the online peak at the end moves; the top hot words rarely
    change places).  A key whose map lost entries, or whose series start moved (a late event in an
    earlier minute), is sent whole and listed in ``replace``; other values are sent whole.
    :func:`apply_delta` rebuilds ``new`` from ``old`` and this; applying it to ``new`` itself
    changes nothing, so a page that got a snapshot newer than ``old`` may apply it too.
    """
    if old is None:
        return dict(new)
    out: dict[str, Any] = {}
    replace: list[str] = []
    for key, value in new.items():
        before = old.get(key)
        if value == before:
            continue
        if key in _MAP_KEYS and isinstance(before, dict) and isinstance(value, dict) and set(before) <= set(value):
            out[key] = {k: v for k, v in value.items() if k not in before or before[k] != v}
        elif (key == "series" and isinstance(before, dict) and isinstance(value, dict)
              and before.get("start") == value.get("start")):
            i = _common_prefix(before["rows"], value["rows"])
            out[key] = {"from": i, "rows": value["rows"][i:]}
        elif key in _LIST_KEYS and isinstance(before, list) and isinstance(value, list):
            i = _common_prefix(before, value)
            out[key] = {"from": i, "items": value[i:]}
        else:
            out[key] = value
            if key in _MAP_KEYS or key in _LIST_KEYS or key == "series":  # a scalar is replaced anyway
                replace.append(key)
    if replace:
        out["replace"] = replace
    return out


def apply_delta(old: dict[str, Any] | None, change: dict[str, Any]) -> dict[str, Any]:
    """The body that ``change`` (from :func:`delta`) makes of ``old``: what the page does."""
    if old is None:
        return dict(change)
    new = dict(old)
    replace = set(change.get("replace", ()))
    for key, value in change.items():
        if key == "replace":
            continue
        before = old.get(key)
        if key in replace:
            new[key] = value
        elif key in _MAP_KEYS:
            assert isinstance(before, dict)
            new[key] = {**before, **value}
        elif key == "series":
            assert isinstance(before, dict)
            new[key] = {**before, "rows": before["rows"][: value["from"]] + value["rows"]}
        elif key in _LIST_KEYS:
            assert isinstance(before, list)
            new[key] = before[: value["from"]] + value["items"]
        else:
            new[key] = value
    return new
