"""What the simulator sent, counted as it sends: the ground truth the pipeline's results are checked against.

A test or benchmark compares the workers' counters, the dead-letter topic and the warehouse with
these numbers.  The recorder sees exactly the messages the stream yields, in order, so the truth
of a stream cut short (Ctrl-C) still matches what was actually produced.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import (
    Comment,
    Follow,
    HostAction,
    Like,
    OrderAttempt,
    Payment,
    Presence,
    ProductClick,
    ProductImpression,
    SaleConfig,
    Share,
)
from schemas.base import Event


class Outgoing(msgspec.Struct, frozen=True, gc=False):
    """One message for Kafka: a valid event, or raw bytes that must be dead-lettered.

    ``topic`` is the logical name (``settings.topic`` adds the prefix).  ``ts`` is the event time
    (for an invalid message, that of the event it was spoiled from); ``emit_ms`` is when the
    message is sent in event time, ``ts <= emit_ms <= ts + jitter_ms``; the stream is ordered by it,
    then by ``seq`` (generation order), which makes the order total and reproducible.
    """

    topic: str
    key: bytes
    ts: int
    emit_ms: int
    seq: int
    event: Event | None = None
    raw: bytes | None = None
    invalid_kind: str | None = None

    @property
    def valid(self) -> bool:
        return self.event is not None


class TopicTruth(msgspec.Struct, kw_only=True):
    messages: int = 0
    valid: int = 0
    invalid: int = 0


class SkuTruth(msgspec.Struct, kw_only=True):
    hot: bool = False
    stock_opened: int = 0
    restocked: int = 0
    closed: bool = False
    order_attempts: int = 0
    distinct_order_ids: int = 0
    distinct_buyers: int = 0
    units_requested: int = 0
    payments_paid: int = 0
    payments_cancelled: int = 0
    impressions: int = 0
    impressions_pinned: int = 0
    clicks: int = 0
    clicks_pinned: int = 0
    impression_viewers: int = 0
    click_viewers: int = 0
    pins: int = 0


class RoomTruth(msgspec.Struct, kw_only=True):
    unique_viewers: int = 0
    joins: int = 0
    leaves: int = 0
    heartbeats: int = 0
    comments: int = 0
    like_events: int = 0
    likes: int = 0
    order_attempts: int = 0
    distinct_order_ids: int = 0
    order_retries: int = 0
    payments_paid: int = 0
    payments_cancelled: int = 0
    #: Joins by traffic source (joins without one count as "unknown"), and joins of followers.
    joins_by_source: dict[str, int] = msgspec.field(default_factory=dict)
    follower_joins: int = 0
    #: Sum over visits of leave - join (ms): every viewer leaves by the end, so once the stream is
    #: over this is the room's whole watch time (mid-stream it is not: open visits count negative).
    watch_ms: int = 0
    impressions: int = 0
    clicks: int = 0
    follows: int = 0
    shares: int = 0
    host_actions: dict[str, int] = msgspec.field(default_factory=dict)
    skus: dict[str, SkuTruth] = msgspec.field(default_factory=dict)


class Truth(msgspec.Struct, kw_only=True):
    seed: int
    start_ts: int
    end_ts: int
    messages: int = 0
    valid: int = 0
    invalid: int = 0
    topics: dict[str, TopicTruth] = msgspec.field(default_factory=dict)
    invalid_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    rooms: dict[str, RoomTruth] = msgspec.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class TruthRecorder:
    """Accumulates a :class:`Truth` one outgoing message at a time (sets for the distinct counts)."""

    def __init__(self, seed: int, start_ts: int, end_ts: int, hot_skus: set[str]) -> None:
        self._truth = Truth(seed=seed, start_ts=start_ts, end_ts=end_ts)
        self._hot = hot_skus
        self._viewers: dict[str, set[str]] = {}
        self._room_orders: dict[str, set[str]] = {}
        self._sku_orders: dict[str, set[str]] = {}
        self._sku_buyers: dict[str, set[str]] = {}
        self._sku_viewers: dict[tuple[str, str], set[str]] = {}

    def _room(self, room_id: str) -> RoomTruth:
        room = self._truth.rooms.get(room_id)
        if room is None:
            room = self._truth.rooms[room_id] = RoomTruth()
        return room

    def _sku(self, room: RoomTruth, sku_id: str) -> SkuTruth:
        sku = room.skus.get(sku_id)
        if sku is None:
            sku = room.skus[sku_id] = SkuTruth(hot=sku_id in self._hot)
        return sku

    def record(self, item: Outgoing) -> None:
        truth = self._truth
        topic = truth.topics.get(item.topic)
        if topic is None:
            topic = truth.topics[item.topic] = TopicTruth()
        topic.messages += 1
        truth.messages += 1
        event = item.event
        if event is None:
            topic.invalid += 1
            truth.invalid += 1
            kind = item.invalid_kind or "unknown"
            truth.invalid_by_kind[kind] = truth.invalid_by_kind.get(kind, 0) + 1
            return
        topic.valid += 1
        truth.valid += 1
        if isinstance(event, Presence):
            room = self._room(event.room_id)
            if event.action == "join":
                room.joins += 1
                source = event.source or "unknown"
                room.joins_by_source[source] = room.joins_by_source.get(source, 0) + 1
                room.follower_joins += bool(event.is_follower)
                room.watch_ms -= event.ts
                viewers = self._viewers.setdefault(event.room_id, set())
                viewers.add(event.user_id)
                room.unique_viewers = len(viewers)
            elif event.action == "leave":
                room.leaves += 1
                room.watch_ms += event.ts
            else:
                room.heartbeats += 1
        elif isinstance(event, Comment):
            self._room(event.room_id).comments += 1
        elif isinstance(event, Like):
            room = self._room(event.room_id)
            room.like_events += 1
            room.likes += event.count
        elif isinstance(event, OrderAttempt):
            self._record_order(event)
        elif isinstance(event, Payment):
            room = self._room(event.room_id)
            sku = self._sku(room, event.sku_id)
            if event.action == "paid":
                room.payments_paid += 1
                sku.payments_paid += 1
            else:
                room.payments_cancelled += 1
                sku.payments_cancelled += 1
        elif isinstance(event, ProductImpression | ProductClick):
            self._record_funnel(event)
        elif isinstance(event, Follow):
            self._room(event.room_id).follows += 1
        elif isinstance(event, Share):
            self._room(event.room_id).shares += 1
        elif isinstance(event, HostAction):
            room = self._room(event.room_id)
            room.host_actions[event.action] = room.host_actions.get(event.action, 0) + 1
            if event.action == "pin":
                self._sku(room, event.sku_id).pins += 1
        elif isinstance(event, SaleConfig):
            sku = self._sku(self._room(event.room_id), event.sku_id)
            if event.action == "open":
                sku.stock_opened += event.stock or 0
            elif event.action == "restock":
                sku.restocked += event.stock or 0
            else:
                sku.closed = True

    def _record_funnel(self, event: ProductImpression | ProductClick) -> None:
        room = self._room(event.room_id)
        sku = self._sku(room, event.sku_id)
        pinned = event.placement == "pinned"
        kind = "i" if isinstance(event, ProductImpression) else "k"
        viewers = self._sku_viewers.setdefault((kind, event.sku_id), set())
        viewers.add(event.user_id)
        if kind == "i":
            room.impressions += 1
            sku.impressions += 1
            sku.impressions_pinned += pinned
            sku.impression_viewers = len(viewers)
        else:
            room.clicks += 1
            sku.clicks += 1
            sku.clicks_pinned += pinned
            sku.click_viewers = len(viewers)

    def _record_order(self, event: OrderAttempt) -> None:
        room = self._room(event.room_id)
        sku = self._sku(room, event.sku_id)
        room.order_attempts += 1
        sku.order_attempts += 1
        room_orders = self._room_orders.setdefault(event.room_id, set())
        sku_orders = self._sku_orders.setdefault(event.sku_id, set())
        if event.order_id not in sku_orders:
            sku.units_requested += event.quantity
        room_orders.add(event.order_id)
        sku_orders.add(event.order_id)
        room.distinct_order_ids = len(room_orders)
        room.order_retries = room.order_attempts - room.distinct_order_ids
        sku.distinct_order_ids = len(sku_orders)
        buyers = self._sku_buyers.setdefault(event.sku_id, set())
        buyers.add(event.user_id)
        sku.distinct_buyers = len(buyers)

    def result(self) -> Truth:
        """The truth so far (a copy: later records do not change it)."""
        return msgspec.convert(msgspec.to_builtins(self._truth), Truth)
