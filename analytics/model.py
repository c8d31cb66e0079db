"""The report as plain data: what the queries' rows become and what the HTML and CSVs show.

Money is integer cents, times are epoch milliseconds (UTC), durations milliseconds, as on the wire.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields


def iso_minute(ms: int) -> str:
    """``2026-01-01T00:00Z``: the readable, sortable id of a stream that starts at ``ms``."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class StreamSpan:
    """One stream of a room: a run of active minutes with no quiet gap longer than the threshold.

    ``[start_ms, end_ms)`` are minute boundaries; ``events`` counts the viewer events in it.
    """

    room_id: str
    start_ms: int
    end_ms: int
    events: int

    @property
    def stream_id(self) -> str:
        return iso_minute(self.start_ms)


@dataclass(frozen=True)
class Figures:
    """The headline figures of one stream or time window (see README "Post-stream report")."""

    first_event_ms: int = 0
    last_event_ms: int = 0
    duration_ms: int = 0
    peak_online: int = 0
    peak_online_at_ms: int = 0
    avg_online: float = 0.0
    unique_viewers: int = 0
    avg_watch_ms: float = 0.0
    comments: int = 0
    commenters: int = 0
    likes: int = 0
    order_attempts: int = 0
    attempters: int = 0
    accepted: int = 0
    rejected: int = 0
    paid: int = 0
    cancelled: int = 0
    expired: int = 0
    units: int = 0
    gmv_reserved_cents: int = 0
    gmv_paid_cents: int = 0
    buyers: int = 0
    paying_buyers: int = 0
    conversion_rate: float = 0.0
    gpm_cents: float = 0.0
    aov_cents: float = 0.0
    multi_order_buyers: int = 0
    returning_buyers: int = 0
    scored_comments: int = 0
    sentiment_avg: float | None = None
    negative_share: float | None = None
    # the console's figures (0 / None for streams recorded before their events existed)
    watch_ms: int = 0
    entries: int = 0
    follower_entries: int = 0
    impressions: int = 0
    impression_viewers: int = 0
    clicks: int = 0
    click_viewers: int = 0
    ctr: float | None = None
    new_followers: int = 0
    shares: int = 0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class MinuteRow:
    """One minute of the stream (dense: quiet minutes are rows of zeros)."""

    minute_ms: int
    online_peak: int = 0
    comments: int = 0
    likes: int = 0
    order_attempts: int = 0
    accepted: int = 0
    units: int = 0
    gmv_reserved_cents: int = 0
    paid: int = 0
    gmv_paid_cents: int = 0
    cancelled: int = 0
    expired: int = 0
    scored_comments: int = 0
    positive: int = 0
    negative: int = 0
    sentiment_sum: float = 0.0
    entries: int = 0
    impressions: int = 0
    clicks: int = 0
    follows: int = 0
    shares: int = 0

    @property
    def sentiment_avg(self) -> float | None:
        return self.sentiment_sum / self.scored_comments if self.scored_comments else None

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.scored_comments if self.scored_comments else None


@dataclass(frozen=True)
class SkuFigures:
    """One SKU's sale: stock, outcome counts, accept rate, when it sold out, why attempts failed."""

    sku_id: str
    title: str = ""
    price_cents: int = 0
    stock: int = 0
    starts_at_ms: int = 0
    ends_at_ms: int = 0
    attempts: int = 0
    accepted: int = 0
    rejected: int = 0
    paid: int = 0
    cancelled: int = 0
    expired: int = 0
    units_accepted: int = 0
    units_paid: int = 0
    gmv_paid_cents: int = 0
    accept_rate: float = 0.0
    sold_out_at_ms: int | None = None
    sell_out_ms: int | None = None
    rejections: dict[str, int] = field(default_factory=dict)
    impressions: int = 0
    impressions_pinned: int = 0
    impression_viewers: int = 0
    clicks: int = 0
    clicks_pinned: int = 0
    click_viewers: int = 0
    #: clicks / impressions, and paid orders per click (None without impressions / clicks).
    ctr: float | None = None
    conversion: float | None = None


@dataclass(frozen=True)
class SourceRow:
    """Where viewers came from: joins (entries) by source and by follower; each viewer's first join
    attributes them to one source, for the conversion (buyers / viewers) of that source."""

    source: str
    entries: int = 0
    follower_entries: int = 0
    non_follower_entries: int = 0
    unknown_entries: int = 0
    viewers: int = 0
    buyers: int = 0
    conversion: float = 0.0


@dataclass(frozen=True)
class MarkerRow:
    """A key event drawn on the trend charts: sale_open, sale_close, restock, sold_out, pin, unpin,
    alert, online_peak."""

    ts_ms: int
    kind: str
    sku_id: str = ""
    label: str = ""


@dataclass(frozen=True)
class MetricTrend:
    """One headline metric of this stream against the room's benchmark, with its earlier values."""

    metric: str
    value: float | None
    benchmark: float | None
    gap: float | None
    level: str
    #: (stream id, value) of the room's earlier streams in the benchmark window, oldest first.
    trend: list[tuple[str, float | None]] = field(default_factory=list)


@dataclass(frozen=True)
class BenchmarkView:
    """The room's own benchmark as of this stream's start: medians of its earlier streams."""

    streams: int
    since_ms: int
    medians: dict[str, float | None]
    current: dict[str, float | None]
    #: The three metrics furthest below (or least above) their benchmark, worst first.
    worst: list[MetricTrend]


@dataclass(frozen=True)
class Spike:
    """A minute whose share of negative comments stood out."""

    minute_ms: int
    negative: int
    scored: int
    share: float


@dataclass(frozen=True)
class TopComment:
    ts_ms: int
    user: str
    text: str
    score: float


@dataclass(frozen=True)
class AlertRow:
    ts_ms: int
    kind: str
    level: str
    message: str
    value: float
    threshold: float


@dataclass(frozen=True)
class StreamReport:
    """Everything about one stream or window."""

    room_id: str
    start_ms: int
    end_ms: int
    label: str
    figures: Figures
    minutes: list[MinuteRow]
    online: list[tuple[int, int]]
    skus: list[SkuFigures]
    spikes: list[Spike]
    top_positive: list[TopComment]
    top_negative: list[TopComment]
    hot_words: list[tuple[str, int]]
    hot_words_exact: bool
    alerts: list[AlertRow]
    alerts_total: int
    alert_kinds: list[tuple[str, str, int]]
    sources: list[SourceRow] = field(default_factory=list)
    markers: list[MarkerRow] = field(default_factory=list)
    #: (ts ms, action, sku, stock, price cents, title, host): the host's audit trail.
    host_actions: list[tuple[int, str, str, int, int, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """One figure of this stream next to the previous one."""

    name: str
    current: float | int | None
    previous: float | int | None

    @property
    def change(self) -> float | None:
        """Relative change (0.25 = +25 %), None when there is nothing to compare with."""
        if self.current is None or self.previous is None or self.previous == 0:
            return None
        return (self.current - self.previous) / abs(self.previous)


@dataclass(frozen=True)
class Report:
    current: StreamReport
    previous: StreamReport | None
    comparison: list[Comparison]
    generated_ms: int
    benchmark: BenchmarkView | None = None
