"""The headline metrics of a stream, defined once: the live console, the room's benchmark and the
post-stream report all compute them with :func:`headline` and compare them with :func:`gaps`.

Why rates and averages only (per viewer, per minute, per impression): a stream that is still
running, or shorter than usual, can be compared with the median of earlier streams without being
"below benchmark" merely because it has not had time to sell yet.  The names are the metric fields
of :class:`schemas.events.RoomBenchmark`, so the benchmark event carries exactly these.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.events import RoomBenchmark

#: Headline metric names, in display order (the RoomBenchmark fields that are metrics).
HEADLINE_METRICS: tuple[str, ...] = tuple(
    f for f in RoomBenchmark.__struct_fields__ if f not in ("v", "room_id", "streams", "since", "ts")
)

#: name -> (label, formatter kind as in analytics.html: count, money, percent, duration, float).
HEADLINE_LABELS: dict[str, tuple[str, str]] = {
    "avg_online": ("Average online", "float"),
    "avg_watch_ms": ("Average watch time", "duration"),
    "ctr": ("Product click-through rate", "percent"),
    "conversion_rate": ("Conversion (buyers / viewers)", "percent"),
    "gpm_cents": ("GPM (paid GMV per 1,000 viewers)", "money"),
    "gmv_per_minute_cents": ("Paid GMV per minute", "money"),
    "follow_rate": ("New followers per viewer", "percent"),
    "comments_per_viewer": ("Comments per viewer", "float"),
}

#: A metric this far (relative) below its benchmark is red; anything below is yellow.
RED_GAP = -0.2
DAY_MS = 86_400_000
BENCHMARK_DAYS = 14

Level = Literal["red", "yellow", "green"]
Metrics = dict[str, float | None]


@dataclass(frozen=True)
class HeadlineInputs:
    """The counts the headline metrics are made of, for one stream (or a stream so far)."""

    duration_ms: int
    watch_ms: float
    viewers: int
    impressions: int
    clicks: int
    buyers: int
    gmv_paid_cents: int
    follows: int
    comments: int


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def headline(x: HeadlineInputs) -> Metrics:
    """Every headline metric; None where its denominator is zero (nothing to say yet)."""
    minutes = x.duration_ms / 60_000
    return {
        "avg_online": _div(x.watch_ms, x.duration_ms),
        "avg_watch_ms": _div(x.watch_ms, x.viewers),
        "ctr": _div(x.clicks, x.impressions),
        "conversion_rate": _div(x.buyers, x.viewers),
        "gpm_cents": _div(x.gmv_paid_cents * 1000, x.viewers),
        "gmv_per_minute_cents": _div(x.gmv_paid_cents, minutes),
        "follow_rate": _div(x.follows, x.viewers),
        "comments_per_viewer": _div(x.comments, x.viewers),
    }


def benchmark_of(room_id: str, previous: Sequence[Mapping[str, float | None]], *, since_ms: int,
                 now_ms: int) -> RoomBenchmark:
    """The room's benchmark: per metric, the median over ``previous`` streams that had it."""
    medians: dict[str, float | None] = {}
    for name in HEADLINE_METRICS:
        values = [v for m in previous if (v := m.get(name)) is not None]
        medians[name] = float(statistics.median(values)) if values else None
    return RoomBenchmark(room_id=room_id, streams=len(previous), since=since_ms, ts=now_ms, **medians)  # type: ignore[arg-type]


def benchmark_metrics(benchmark: RoomBenchmark) -> Metrics:
    return {name: getattr(benchmark, name) for name in HEADLINE_METRICS}


@dataclass(frozen=True)
class Gap:
    """One metric against its benchmark: ``gap`` = (value - benchmark) / benchmark."""

    metric: str
    value: float
    benchmark: float
    gap: float

    @property
    def level(self) -> Level:
        return level(self.gap)


def level(gap: float) -> Level:
    """Red at 20 % or more below the benchmark, yellow below it, green at or above it."""
    if gap <= RED_GAP:
        return "red"
    return "yellow" if gap < 0 else "green"


def gaps(current: Mapping[str, float | None], benchmark: Mapping[str, float | None]) -> list[Gap]:
    """Every metric that both sides have (benchmark > 0), worst first; ties in display order."""
    out = []
    for name in HEADLINE_METRICS:
        value, bench = current.get(name), benchmark.get(name)
        if value is None or bench is None or bench <= 0:
            continue
        out.append(Gap(name, value, bench, (value - bench) / bench))
    order = {n: i for i, n in enumerate(HEADLINE_METRICS)}
    return sorted(out, key=lambda g: (g.gap, order[g.metric]))


def worst(current: Mapping[str, float | None], benchmark: Mapping[str, float | None]) -> Gap | None:
    """The metric furthest below its benchmark, or None when none is below it."""
    ranked = gaps(current, benchmark)
    return ranked[0] if ranked and ranked[0].gap < 0 else None


def worst_n(current: Mapping[str, float | None], benchmark: Mapping[str, float | None], n: int = 3) -> list[Gap]:
    """The ``n`` metrics furthest below (or least above) their benchmark."""
    return gaps(current, benchmark)[:n]
