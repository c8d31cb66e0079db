"""The report's decisions over plain rows: streams, online curve, totals, ratios, spikes, SKUs.

No I/O: :mod:`analytics.build` hands in what :mod:`warehouse.reports` returned.  Definitions match
the live counters (``streams/counters/core.py``) so the dashboard and the review agree:

- a *buyer* has an accepted order; conversion = buyers / unique viewers; GPM = paid GMV per 1,000
  unique viewers; AOV = paid GMV / paid orders;
- *online* at a second is the viewers present at its end (joins minus leaves so far, plus those
  present when the window opened); the peak is the largest such value; the average is the time
  average, i.e. total watch time / duration.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from analytics.model import (
    AlertRow,
    Comparison,
    Figures,
    MarkerRow,
    MinuteRow,
    SkuFigures,
    SourceRow,
    Spike,
    StreamSpan,
)

MINUTE_MS = 60_000
SECOND_MS = 1_000

#: A room is between streams after this long without viewer activity.
DEFAULT_GAP_MS = 30 * MINUTE_MS


def split_streams(room_id: str, minutes: Iterable[tuple[int, int]], gap_ms: int = DEFAULT_GAP_MS) -> list[StreamSpan]:
    """Group active minutes (minute start ms, events) into streams: a quiet gap longer than ``gap_ms``
    between two active minutes ends one stream and starts the next."""
    if gap_ms < 0:
        raise ValueError("gap must be >= 0")
    spans: list[StreamSpan] = []
    start = prev = None
    events = 0
    for minute, n in sorted(minutes):
        if n <= 0:
            continue
        if prev is not None and minute - (prev + MINUTE_MS) > gap_ms:
            assert start is not None
            spans.append(StreamSpan(room_id, start, prev + MINUTE_MS, events))
            start, events = None, 0
        if start is None:
            start = minute
        prev = minute
        events += n
    if start is not None and prev is not None:
        spans.append(StreamSpan(room_id, start, prev + MINUTE_MS, events))
    return spans


def find_stream(spans: Sequence[StreamSpan], stream_id: str) -> StreamSpan:
    for span in spans:
        if span.stream_id == stream_id:
            return span
    known = ", ".join(s.stream_id for s in spans) or "none"
    raise LookupError(f"no stream {stream_id!r} in this room (streams: {known})")


def previous_stream(spans: Sequence[StreamSpan], start_ms: int) -> StreamSpan | None:
    """The last stream that ended at or before ``start_ms``."""
    before = [s for s in spans if s.end_ms <= start_ms]
    return max(before, key=lambda s: s.start_ms) if before else None


def event_span(
    presence: Iterable[Sequence[int]], *per_minute: Iterable[Sequence[int]]
) -> tuple[int, int] | None:
    """(first, last) event time over presence seconds (first/last ts in columns 3, 4) and per-minute
    rows of comments, likes and orders (columns 2, 3); None when all are empty.  Payments and
    results are not viewer activity in the room, so they do not stretch the stream."""
    firsts: list[int] = []
    lasts: list[int] = []
    for row in presence:
        firsts.append(row[3])
        lasts.append(row[4])
    for rows in per_minute:
        for row in rows:
            firsts.append(row[2])
            lasts.append(row[3])
    return (min(firsts), max(lasts)) if firsts else None


def online_series(
    seconds: Iterable[Sequence[int]], initial: int, first_ms: int, last_ms: int
) -> list[tuple[int, int]]:
    """(second start ms, viewers online at its end) for every second from ``first_ms`` to ``last_ms``,
    from sparse (second, joins, leaves, ...) rows and the viewers ``initial``-ly present."""
    deltas = {row[0]: row[1] - row[2] for row in seconds}
    first = first_ms - first_ms % SECOND_MS
    last = last_ms - last_ms % SECOND_MS
    online = initial
    out = []
    for sec in range(first, last + SECOND_MS, SECOND_MS):
        online += deltas.get(sec, 0)
        out.append((sec, online))
    return out


def peak(series: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(largest value, first time it was reached); (0, 0) for an empty series."""
    best, at = 0, 0
    for t, v in series:
        if v > best:
            best, at = v, t
    return best, at


def dense_minutes(
    start_ms: int,
    end_ms: int,
    online: Sequence[tuple[int, int]],
    comments: Iterable[Sequence[int]],
    likes: Iterable[Sequence[int]],
    orders: Iterable[Sequence[int]],
    results: Iterable[Sequence[int]],
    sentiment: Iterable[tuple[int, int, int, int, float]],
    console: dict[str, list[tuple[int, int]]] | None = None,
) -> list[MinuteRow]:
    """One row per minute of ``[start_ms, end_ms)`` merging every per-minute source.

    Per-minute sources are (minute ms, count, ...) rows.  They may have rows outside the window (an
    order attempted in the stream expires after it): the range grows to include them, so no count
    is dropped."""
    cols: dict[int, dict[str, float]] = {}

    def put(minute: int, **values: float) -> None:
        row = cols.setdefault(minute, {})
        for k, v in values.items():
            row[k] = row.get(k, 0) + v

    for t, v in online:
        m = t - t % MINUTE_MS
        row = cols.setdefault(m, {})
        row["online_peak"] = max(row.get("online_peak", 0), v)
    for r in comments:
        put(r[0], comments=r[1])
    for r in likes:
        put(r[0], likes=r[1])
    for r in orders:
        put(r[0], order_attempts=r[1])
    for m, acc, units, gmv_r, paid, gmv_p, canc, exp in results:
        put(m, accepted=acc, units=units, gmv_reserved_cents=gmv_r, paid=paid, gmv_paid_cents=gmv_p,
            cancelled=canc, expired=exp)
    for m, n, pos, neg, total in sentiment:
        put(m, scored_comments=n, positive=pos, negative=neg, sentiment_sum=total)
    for name, counts in (console or {}).items():  # entries, impressions, clicks, follows, shares
        for m, n in counts:
            put(m, **{name: n})
    first = min([start_ms - start_ms % MINUTE_MS, *cols])
    last = max([end_ms - 1 - (end_ms - 1) % MINUTE_MS, *cols])
    rows = []
    for m in range(first, last + MINUTE_MS, MINUTE_MS):
        values = cols.get(m, {})
        rows.append(MinuteRow(
            minute_ms=m,
            **{k: (v if k == "sentiment_sum" else int(v)) for k, v in values.items()},  # type: ignore[arg-type]
        ))
    return rows


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def figures(
    *,
    first_ms: int,
    last_ms: int,
    online: Sequence[tuple[int, int]],
    viewers: int,
    watch_ms: int,
    minutes: Sequence[MinuteRow],
    people: dict[str, int],
    rejected: int,
) -> Figures:
    """The headline figures; counts are sums of the per-minute rows."""

    def total(name: str) -> int:
        return sum(int(getattr(m, name)) for m in minutes)

    duration = max(0, last_ms - first_ms)
    top, top_at = peak(online)
    scored = total("scored_comments")
    sentiment_sum = sum(m.sentiment_sum for m in minutes)
    gmv_paid = total("gmv_paid_cents")
    paid = total("paid")
    buyers = people.get("buyers", 0)
    return Figures(
        first_event_ms=first_ms,
        last_event_ms=last_ms,
        duration_ms=duration,
        peak_online=top,
        peak_online_at_ms=top_at,
        avg_online=ratio(watch_ms, duration),
        unique_viewers=viewers,
        avg_watch_ms=ratio(watch_ms, viewers),
        comments=total("comments"),
        commenters=people.get("commenters", 0),
        likes=total("likes"),
        order_attempts=total("order_attempts"),
        attempters=people.get("attempters", 0),
        accepted=total("accepted"),
        rejected=rejected,
        paid=paid,
        cancelled=total("cancelled"),
        expired=total("expired"),
        units=total("units"),
        gmv_reserved_cents=total("gmv_reserved_cents"),
        gmv_paid_cents=gmv_paid,
        buyers=buyers,
        paying_buyers=people.get("paying_buyers", 0),
        conversion_rate=ratio(buyers, viewers),
        gpm_cents=ratio(gmv_paid * 1000, viewers),
        aov_cents=ratio(gmv_paid, paid),
        multi_order_buyers=people.get("multi_order_buyers", 0),
            returning_buyers=people.get("returning_buyers", 0),
        scored_comments=scored,
        sentiment_avg=sentiment_sum / scored if scored else None,
        negative_share=total("negative") / scored if scored else None,
        watch_ms=watch_ms,
        entries=total("entries"),
        follower_entries=people.get("follower_entries", 0),
        impressions=total("impressions"),
        impression_viewers=people.get("impression_viewers", 0),
        clicks=total("clicks"),
        click_viewers=people.get("click_viewers", 0),
        ctr=total("clicks") / total("impressions") if total("impressions") else None,
        new_followers=people.get("new_followers", 0),
        shares=total("shares"),
    )


def negative_spikes(
    minutes: Sequence[MinuteRow], *, min_comments: int = 5, factor: float = 2.0, floor: float = 0.3
) -> list[Spike]:
    """Minutes whose negative share is at least ``floor`` and ``factor`` times the whole stream's,
    among minutes with at least ``min_comments`` scored comments (a lone complaint is not a spike)."""
    scored = sum(m.scored_comments for m in minutes)
    overall = sum(m.negative for m in minutes) / scored if scored else 0.0
    threshold = max(floor, factor * overall)
    return [
        Spike(m.minute_ms, m.negative, m.scored_comments, m.negative / m.scored_comments)
        for m in minutes
        if m.scored_comments >= min_comments and m.negative / m.scored_comments >= threshold
    ]


def sku_figures(
    outcomes: Iterable[tuple[str, str, str, int, int, int]],
    attempts: Iterable[tuple[str, int]],
    configs: Iterable[tuple[str, str, int, int, int, int, str]],
    sold_out_at: dict[str, int],
) -> list[SkuFigures]:
    """Per SKU: terms from the sale configs (in time order: the first open sets stock, restocks add,
    a later open re-times), outcome counts from the results, accept rate = accepted / attempts,
    sell-out time = first moment nothing was available, measured from the sale start."""
    skus: dict[str, dict[str, object]] = {}
    reasons: dict[str, Counter[str]] = {}

    def sku(sku_id: str) -> dict[str, object]:
        return skus.setdefault(sku_id, {"sku_id": sku_id})

    for sku_id, action, stock, price, starts, ends, title in configs:
        s = sku(sku_id)
        if action == "open":
            if "stock" not in s:
                s["stock"] = stock
            s.update(price_cents=price, starts_at_ms=starts, ends_at_ms=ends)
            if title:
                s["title"] = title
        elif action == "restock":
            s["stock"] = int(s.get("stock", 0)) + stock  # type: ignore[call-overload]
    for sku_id, n in attempts:
        sku(sku_id)["attempts"] = n
    for sku_id, status, reason, n, units, cents in outcomes:
        s = sku(sku_id)
        if status in ("accepted", "rejected", "paid", "cancelled", "expired"):
            s[status] = int(s.get(status, 0)) + n  # type: ignore[call-overload]
        if status == "accepted":
            s["units_accepted"] = int(s.get("units_accepted", 0)) + units  # type: ignore[call-overload]
        elif status == "paid":
            s["units_paid"] = int(s.get("units_paid", 0)) + units  # type: ignore[call-overload]
            s["gmv_paid_cents"] = int(s.get("gmv_paid_cents", 0)) + cents  # type: ignore[call-overload]
        elif status == "rejected":
            reasons.setdefault(sku_id, Counter())[reason or "unknown"] += n
    out = []
    for sku_id in sorted(skus):
        s = skus[sku_id]
        sold_out = sold_out_at.get(sku_id)
        starts = int(s.get("starts_at_ms", 0))  # type: ignore[call-overload]
        out.append(SkuFigures(
            **s,  # type: ignore[arg-type]
            accept_rate=ratio(int(s.get("accepted", 0)), int(s.get("attempts", 0))),  # type: ignore[call-overload]
            sold_out_at_ms=sold_out,
            sell_out_ms=None if sold_out is None or not starts else max(0, sold_out - starts),
            rejections=dict(sorted(reasons.get(sku_id, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))),
        ))
    return out


def hot_words(
    texts: Iterable[tuple[str, int]], tokenize: Callable[[str], Iterable[str]], top: int = 30
) -> list[tuple[str, int]]:
    """The ``top`` words by occurrences over (text, how many comments had it); ties by word."""
    counts: Counter[str] = Counter()
    for text, n in texts:
        for word in tokenize(text):
            counts[word] += n
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def with_funnel(skus: list[SkuFigures], funnel: Iterable[tuple[str, int, int, int, int, int, int]]) -> list[SkuFigures]:
    """The SKUs with their impressions and clicks (per SKU rows of ``ReportQueries.sku_funnel``), CTR =
    clicks / impressions and conversion = paid orders / clicks; a SKU shown but never sold is added."""
    by_id = {s.sku_id: s for s in skus}
    for sku_id, imp, imp_pinned, imp_people, clicks, clicks_pinned, click_people in funnel:
        base = by_id.get(sku_id) or SkuFigures(sku_id=sku_id)
        by_id[sku_id] = dataclasses.replace(
            base, impressions=imp, impressions_pinned=imp_pinned, impression_viewers=imp_people, clicks=clicks,
            clicks_pinned=clicks_pinned, click_viewers=click_people,
            ctr=clicks / imp if imp else None, conversion=base.paid / clicks if clicks else None,
        )
    return [by_id[k] for k in sorted(by_id)]


def source_rows(
    entries: Iterable[tuple[str, int, int, int, int]], conversion: Iterable[tuple[str, int, int]]
) -> list[SourceRow]:
    """Traffic sources, most entries first: joins split by follower, and buyers / viewers where each
    viewer belongs to the source of their first join."""
    rows: dict[str, dict[str, int]] = {}
    for source, n, fol, non, unknown in entries:
        rows.setdefault(source, {}).update(entries=n, follower_entries=fol, non_follower_entries=non,
                                           unknown_entries=unknown)
    for source, viewers, buyers in conversion:
        rows.setdefault(source, {}).update(viewers=viewers, buyers=buyers)
    out = [SourceRow(source=s, conversion=ratio(r.get("buyers", 0), r.get("viewers", 0)), **r)
           for s, r in rows.items()]
    return sorted(out, key=lambda r: (-r.entries, r.source))


#: Host actions as marker kinds.
HOST_MARKERS = {"open_sale": "sale_open", "close_sale": "sale_close", "restock": "restock", "pin": "pin",
                "unpin": "unpin"}


def markers(
    host_actions: Iterable[tuple[int, str, str, int, int, str, str]],
    sold_out_at: dict[str, int],
    alerts: Iterable[AlertRow],
    peak_at_ms: int,
    peak_online: int,
) -> list[MarkerRow]:
    """The key events of a stream, in time order: the host's actions, each SKU's sell-out, the alerts
    and the online peak (the same kinds as the live console's markers)."""
    out = [MarkerRow(t, HOST_MARKERS.get(a, a), sku, f"+{stock}" if a == "restock" else title)
           for t, a, sku, stock, _price, title, _host in host_actions]
    out += [MarkerRow(t, "sold_out", sku) for sku, t in sold_out_at.items()]
    out += [MarkerRow(a.ts_ms, "alert", "", f"{a.level}: {a.kind}") for a in alerts]
    if peak_online:
        out.append(MarkerRow(peak_at_ms, "online_peak", "", str(peak_online)))
    return sorted(out, key=lambda m: (m.ts_ms, m.kind, m.sku_id))


#: Figures compared with the previous stream, in display order.
COMPARED = (
    "duration_ms", "peak_online", "avg_online", "unique_viewers", "avg_watch_ms", "comments", "likes",
    "order_attempts", "accepted", "paid", "cancelled", "expired", "units", "gmv_reserved_cents",
    "gmv_paid_cents", "buyers", "conversion_rate", "gpm_cents", "aov_cents", "multi_order_buyers",
    "returning_buyers", "sentiment_avg", "negative_share", "entries", "impressions", "clicks", "ctr",
    "new_followers", "shares",
)


def compare(current: Figures, previous: Figures | None) -> list[Comparison]:
    return [
        Comparison(name, getattr(current, name), None if previous is None else getattr(previous, name))
        for name in COMPARED
    ]
