"""Every event and message that crosses Kafka, defined once.

Producers (the simulator, the gateway, any JSON client), the Faust agents, the ClickHouse DDL
(checked against :mod:`schemas.clickhouse` by a test) and the JSON Schema files under
``schemas/json/`` all come from these classes.  Money is integer cents; times are epoch
milliseconds; every event has a schema version ``v`` and an id that makes re-delivery harmless.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import msgspec.inspect as mi

from schemas.base import (
    MAX_LIKE_COUNT,
    MAX_QUANTITY,
    MAX_SAFE_INT,
    MAX_STOCK_UNITS,
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
    Cents,
    Count,
    Event,
    Id,
    Price,
    Text,
    TimestampMs,
    Version,
    check_text,
)

Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY, description="Units in one order.")]
LikeCount = Annotated[
    int, msgspec.Meta(ge=1, le=MAX_LIKE_COUNT, description="Likes in this (possibly coalesced) event.")
]
StockUnits = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK_UNITS, description="Units one sale config adds.")]


class Comment(Event, tag="comment", kw_only=True, forbid_unknown_fields=True):
    """A viewer's chat comment in a room. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id
    text: Text
    ts: TimestampMs

    def __post_init__(self) -> None:
        self.text = check_text(self.text, "text")


class Like(Event, tag="like", kw_only=True, forbid_unknown_fields=True):
    """Likes from one viewer, or coalesced from many (user_id null) by the gateway. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id | None = None
    count: LikeCount = 1
    ts: TimestampMs


#: Where a viewer came into the room from (the channels of Douyin's and TikTok's live dashboards).
TrafficSource = Literal[
    "recommend_feed", "following_feed", "search", "short_video", "ads", "shared_link", "other"
]
TRAFFIC_SOURCES: tuple[str, ...] = (
    "recommend_feed", "following_feed", "search", "short_video", "ads", "shared_link", "other"
)


class Presence(Event, tag="presence", kw_only=True, forbid_unknown_fields=True):
    """A viewer joined, left, or is still watching (heartbeat every ~30 s). Keyed by room_id.

    A ``join`` may say where the viewer came from (``source``) and whether they already followed the
    room (``is_follower``); both are optional (older clients send neither) and only a join has them:
    a source on a leave would be counted as an entry by nobody, so it is refused rather than ignored.
    """

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id
    action: Literal["join", "leave", "heartbeat"]
    source: TrafficSource | None = None
    is_follower: bool | None = None
    ts: TimestampMs

    def __post_init__(self) -> None:
        if self.action != "join" and (self.source is not None or self.is_follower is not None):
            raise ValueError(f"source and is_follower belong to a join, not to a {self.action}")


class SaleConfig(Event, tag="sale_config", kw_only=True, forbid_unknown_fields=True):
    """Opens, closes or restocks a flash sale of one SKU. Keyed by sku_id.

    ``open`` needs stock, price_cents, starts_at and ends_at; ``restock`` needs stock (units added);
    ``close`` ends the sale now.
    """

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    sku_id: Id
    action: Literal["open", "close", "restock"]
    stock: StockUnits | None = None
    price_cents: Price | None = None
    starts_at: TimestampMs | None = None
    ends_at: TimestampMs | None = None
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    reservation_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    title: Annotated[str, msgspec.Meta(max_length=4 * 200)] | None = None
    ts: TimestampMs

    def __post_init__(self) -> None:
        if self.title is not None:
            self.title = check_text(self.title, "title", max_chars=200)
        if self.action == "open":
            missing = [n for n in ("stock", "price_cents", "starts_at", "ends_at") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"open needs {', '.join(missing)}")
            assert self.starts_at is not None and self.ends_at is not None
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        elif self.action == "restock" and not self.stock:
            raise ValueError("restock needs stock > 0 (units added)")


class OrderAttempt(Event, tag="order", kw_only=True, forbid_unknown_fields=True):
    """A viewer asks to buy. order_id is chosen by the client and is the idempotency key. Keyed by sku_id."""

    v: Version = SCHEMA_VERSION
    order_id: Id
    room_id: Id
    sku_id: Id
    user_id: Id
    quantity: Quantity = 1
    ts: TimestampMs


class Payment(Event, tag="payment", kw_only=True, forbid_unknown_fields=True):
    """The buyer paid for, or cancelled, a reserved order. Keyed by sku_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    order_id: Id
    room_id: Id
    sku_id: Id
    user_id: Id
    action: Literal["paid", "cancelled"]
    ts: TimestampMs


OrderStatus = Literal["accepted", "rejected", "paid", "cancelled", "expired", "payment_refused"]
ReasonCode = Literal[
    "not_started",
    "ended",
    "sold_out",
    "user_limit",
    "duplicate",
    "invalid",
    "rate_limited",
    "blocked",
    "no_sale",
    "unknown_order",
    "reservation_expired",
    "already_final",
]


class OrderResult(Event, tag="order_result", kw_only=True, forbid_unknown_fields=True):
    """The final word on an order attempt or payment. Keyed by room_id, so that one room's gateway
    subscribers and counters read one partition; a SKU belongs to one room, so per-SKU order holds."""

    v: Version = SCHEMA_VERSION
    order_id: Id
    room_id: Id
    sku_id: Id
    user_id: Id
    status: OrderStatus
    reason: ReasonCode | None = None
    quantity: Quantity = 1
    price_cents: Price = 0
    reserved_until: TimestampMs | None = None
    attempt_ts: TimestampMs
    ts: TimestampMs


class StockUpdate(Event, tag="stock", kw_only=True, forbid_unknown_fields=True):
    """Stock of one SKU after a decision. Keyed by room_id. available + reserved + sold == total."""

    v: Version = SCHEMA_VERSION
    room_id: Id
    sku_id: Id
    available: Count
    reserved: Count
    sold: Count
    total: Count
    price_cents: Price = 0
    ts: TimestampMs


Label = Literal["positive", "neutral", "negative"]


class ScoredComment(Event, tag="scored_comment", kw_only=True, forbid_unknown_fields=True):
    """A comment with its sentiment. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id
    text: Text
    label: Label
    score: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    ts: TimestampMs

    def __post_init__(self) -> None:
        self.text = check_text(self.text, "text")


class SkuStock(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    available: Count
    reserved: Count
    sold: Count
    total: Count

    def __post_init__(self) -> None:
        _saturate_fields(self, _SKU_STOCK_INTS)


class RoomCounters(Event, tag="room_counters", kw_only=True, forbid_unknown_fields=True):
    """A room's live counters for one 1-second window, plus rolling and cumulative values. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    room_id: Id
    window_start: TimestampMs
    window_end: TimestampMs
    online: Count = 0
    peak_online: Count = 0
    unique_viewers: Count = 0
    comments: Count = 0
    likes: Count = 0
    comments_total: Count = 0
    likes_total: Count = 0
    comments_60s: Count = 0
    likes_60s: Count = 0
    order_attempts: Count = 0
    order_attempts_total: Count = 0
    orders_accepted: Count = 0
    orders_accepted_total: Count = 0
    units_total: Count = 0
    gmv_reserved_cents_total: Cents = 0
    gmv_paid_cents_total: Cents = 0
    gmv_paid_cents_60s: Cents = 0
    unique_buyers: Count = 0
    conversion_rate: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    gpm_cents: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    sentiment_avg: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] | None = None
    negative_share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    late_events: Count = 0
    stock: dict[str, SkuStock] = msgspec.field(default_factory=dict)
    ts: TimestampMs

    def __post_init__(self) -> None:
        """Saturate, deliberately: a total beyond the envelope (see :mod:`schemas.base`) is pinned at
        MAX_SAFE_INT rather than producing a snapshot that fails validation downstream."""
        _saturate_fields(self, _ROOM_COUNTER_INTS)


def _saturate_fields(struct: msgspec.Struct, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(struct, name) > MAX_SAFE_INT:
            setattr(struct, name, MAX_SAFE_INT)


def _saturated_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """Names of ``cls``'s integer fields bounded by MAX_SAFE_INT (its counts and money sums)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    names = []
    for f in info.fields:
        t = f.type.type if isinstance(f.type, mi.Metadata) else f.type
        if isinstance(t, mi.IntType) and t.le == MAX_SAFE_INT:
            names.append(f.name)
    return tuple(names)


_SKU_STOCK_INTS = _saturated_fields(SkuStock)
_ROOM_COUNTER_INTS = _saturated_fields(RoomCounters)

#: Where a product was shown: the card the host pinned over the video, or the shop shelf (the bag).
Placement = Literal["pinned", "shelf"]


class ProductImpression(Event, tag="impression", kw_only=True, forbid_unknown_fields=True):
    """A product was shown to a viewer: the host pinned it while they watched, or they saw it on the
    shelf. One event per showing (the app sends it when the card or shelf row becomes visible).
    Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    sku_id: Id
    user_id: Id
    placement: Placement
    ts: TimestampMs


class ProductClick(Event, tag="product_click", kw_only=True, forbid_unknown_fields=True):
    """A viewer tapped a product (opened its detail card), from the pinned card or the shelf. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    sku_id: Id
    user_id: Id
    placement: Placement
    ts: TimestampMs


class Follow(Event, tag="follow", kw_only=True, forbid_unknown_fields=True):
    """A viewer followed the room's account from the live room (a new fan). Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id
    ts: TimestampMs


ShareChannel = Literal["wechat", "moments", "weibo", "qq", "copy_link", "other"]


class Share(Event, tag="share", kw_only=True, forbid_unknown_fields=True):
    """A viewer shared the live room. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    user_id: Id
    channel: ShareChannel = "other"
    ts: TimestampMs


HostVerb = Literal["pin", "unpin", "open_sale", "close_sale", "restock"]


class HostAction(Event, tag="host_action", kw_only=True, forbid_unknown_fields=True):
    """What the host did in the control console, kept as an audit trail. Keyed by room_id.

    ``pin`` / ``unpin`` put a product on (or take it off) the card over the video; ``open_sale``,
    ``close_sale`` and ``restock`` carry the sale terms the host entered and become a
    :class:`SaleConfig` with the same ``event_id`` (:func:`schemas.host.sale_config_for`), so the
    audit record and the command that changed the stock name each other.  ``host_id`` is the
    host's account, deliberately not a viewer ``user_id``: an audit trail must say who acted, so it
    is not pseudonymised.
    """

    v: Version = SCHEMA_VERSION
    event_id: Id
    room_id: Id
    host_id: Id
    action: HostVerb
    sku_id: Id
    stock: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    price_cents: Price | None = None
    starts_at: TimestampMs | None = None
    ends_at: TimestampMs | None = None
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    reservation_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] | None = None
    title: Annotated[str, msgspec.Meta(max_length=4 * 200)] | None = None
    ts: TimestampMs

    def __post_init__(self) -> None:
        if self.title is not None:
            self.title = check_text(self.title, "title", max_chars=200)
        if self.action == "open_sale":
            missing = [n for n in ("stock", "price_cents", "starts_at", "ends_at") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"open_sale needs {', '.join(missing)}")
            assert self.starts_at is not None and self.ends_at is not None
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        elif self.action == "restock" and not self.stock:
            raise ValueError("restock needs stock > 0 (units added)")


class RoomBenchmark(Event, tag="room_benchmark", kw_only=True, forbid_unknown_fields=True):
    """A room's own benchmark: for each headline metric, the median over the room's previous streams
    that started in ``[since, ts)`` (14 days by default); None when no earlier stream had it.
    Keyed by room_id on a compacted topic, so the latest one per room is always there to read.

    The metrics are rates and averages (per viewer, per minute, per impression), so a stream can be
    compared with them while it is still running, whatever its length.
    """

    v: Version = SCHEMA_VERSION
    room_id: Id
    streams: Count = 0
    since: TimestampMs
    avg_online: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    avg_watch_ms: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    ctr: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    conversion_rate: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    gpm_cents: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    gmv_per_minute_cents: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    follow_rate: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    comments_per_viewer: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    ts: TimestampMs


AlertLevel = Literal["info", "warning", "critical"]


class Alert(Event, tag="alert", kw_only=True, forbid_unknown_fields=True):
    """Something a host or operator should look at now. Keyed by room_id."""

    v: Version = SCHEMA_VERSION
    alert_id: Id
    room_id: Id
    kind: Id
    level: AlertLevel
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=4 * MAX_TEXT_CHARS)]
    value: float = 0.0
    threshold: float = 0.0
    ts: TimestampMs

    def __post_init__(self) -> None:
        self.message = check_text(self.message, "message")


class DeadLetter(Event, tag="dead_letter", kw_only=True, forbid_unknown_fields=True):
    """A message that could not be accepted, with its original bytes and why. Keyed by its source topic."""

    v: Version = SCHEMA_VERSION
    source_topic: Annotated[str, msgspec.Meta(min_length=1, max_length=249)]
    partition: Annotated[int, msgspec.Meta(ge=-1, le=2**31 - 1)] = -1
    offset: Annotated[int, msgspec.Meta(ge=-1, le=MAX_SAFE_INT)] = -1
    key: bytes | None = None
    payload: bytes
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    error: Annotated[str, msgspec.Meta(max_length=100)] = "ValidationError"
    ts: TimestampMs


#: Every wire type by its tag; the tag is the ``type`` value in JSON Schema file names.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        Comment,
        Like,
        Presence,
        SaleConfig,
        OrderAttempt,
        Payment,
        OrderResult,
        StockUpdate,
        ScoredComment,
        RoomCounters,
        Alert,
        DeadLetter,
        ProductImpression,
        ProductClick,
        Follow,
        Share,
        HostAction,
        RoomBenchmark,
    )
}
