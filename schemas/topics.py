"""Kafka topics: which event each carries, which field is its key, its partitions and configs.

The key decides the partition, and the partition decides who may write the state:
order attempts, payments and sale config are keyed by ``sku_id`` so that one consumer owns a
SKU's stock and decides serially (partitioning is the lock).  Room events and everything the
dashboard reads are keyed by ``room_id`` so that one room's counters have a single writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.base import Event
from schemas.console import RoomConsoleView
from schemas.events import (
    Alert,
    Comment,
    DeadLetter,
    Follow,
    HostAction,
    Like,
    OrderAttempt,
    OrderResult,
    Payment,
    Presence,
    ProductClick,
    ProductImpression,
    RoomBenchmark,
    RoomCounters,
    SaleConfig,
    ScoredComment,
    Share,
    StockUpdate,
)

_WEEK_MS = str(7 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    """One logical topic. ``name`` has no prefix; ``Settings.topic(name)`` adds it."""

    name: str
    event: type[Event]
    key_field: str
    description: str
    config: dict[str, str] = field(default_factory=dict)

    def key_of(self, event: Event) -> bytes:
        """The Kafka message key of ``event`` on this topic (UTF-8 of its key field)."""
        return str(getattr(event, self.key_field)).encode()


#: Input topics are stamped by the broker on arrival (LogAppendTime): the jobs measure a client's clock
#: skew and a payment's grace against the time the message reached Kafka, which a client cannot forge and
#: which does not change when a worker reads it late (after a restart, in a backlog, in a replay).
_ARRIVAL = {"message.timestamp.type": "LogAppendTime"}

_SPECS = [
    TopicSpec("comments", Comment, "room_id", "Viewers' chat comments, as sent.", dict(_ARRIVAL)),
    TopicSpec("likes", Like, "room_id", "Likes, possibly coalesced (count > 1).", dict(_ARRIVAL)),
    TopicSpec("presence", Presence, "room_id", "Viewer join / leave / heartbeat.", dict(_ARRIVAL)),
    # Before "sale-config" on purpose: code that maps an event type to its topic with
    # {spec.event: spec for spec in TOPICS.values()} (last wins) must get the INPUT topic for SaleConfig.
    TopicSpec(
        "sale-config-applied", SaleConfig, "room_id",
        "Sale configs the flash-sale job applied, once each (what the warehouse stores).",
    ),
    TopicSpec("sale-config", SaleConfig, "sku_id", "Flash-sale open / close / restock per SKU.", dict(_ARRIVAL)),
    TopicSpec("orders", OrderAttempt, "sku_id", "Order attempts; order_id is the idempotency key.", dict(_ARRIVAL)),
    TopicSpec("payments", Payment, "sku_id", "Payment confirmations and cancellations.", dict(_ARRIVAL)),
    TopicSpec("order-results", OrderResult, "room_id", "Accepted / rejected / paid / expired answers."),
    TopicSpec(
        "stock", StockUpdate, "room_id", "Latest stock of each SKU.",
        {"cleanup.policy": "compact,delete", "retention.ms": _WEEK_MS},
    ),
    TopicSpec("scored-comments", ScoredComment, "room_id", "Comments with sentiment label and score."),
    # Before "room-counters" on purpose ({spec.event: spec ...}, last wins, must give the closed windows).
    TopicSpec(
        "room-counters-live", RoomCounters, "room_id",
        "The open window's counters of each changed room, every 250 ms: the dashboard's tiles between "
        "closed windows (not stored).",
        {"retention.ms": str(3600 * 1000)},
    ),
    TopicSpec(
        "room-counters", RoomCounters, "room_id", "1-second live counter snapshots per room.",
        {"retention.ms": str(24 * 3600 * 1000)},
    ),
    TopicSpec("alerts", Alert, "room_id", "Risk and sentiment alerts."),
    TopicSpec("dead-letters", DeadLetter, "source_topic", "Rejected messages with original bytes and reason."),
    TopicSpec("impressions", ProductImpression, "room_id", "A product shown to a viewer (pinned card or shelf).",
              dict(_ARRIVAL)),
    TopicSpec("product-clicks", ProductClick, "room_id", "A viewer tapped a product.", dict(_ARRIVAL)),
    TopicSpec("follows", Follow, "room_id", "A viewer followed the room's account.", dict(_ARRIVAL)),
    TopicSpec("shares", Share, "room_id", "A viewer shared the room.", dict(_ARRIVAL)),
    TopicSpec("host-actions", HostAction, "room_id", "The host's pins and sale actions: the audit trail.",
              dict(_ARRIVAL)),
    TopicSpec(
        "room-benchmarks", RoomBenchmark, "room_id", "Each room's median of its previous 14 days' streams.",
        {"cleanup.policy": "compact"},
    ),
    TopicSpec(
        "room-console", RoomConsoleView, "room_id",
        "The host's console per room (funnel, sources, trends, markers, diagnosis), at most 1/s per room.",
        # a view a second per room: roll segments hourly so compaction (closed segments only) keeps it small
        {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)},
    ),
]

TOPICS: dict[str, TopicSpec] = {spec.name: spec for spec in _SPECS}

#: Topics that outside producers (apps, gateway, kcat) write to; the workers validate them.
INPUT_TOPICS = (
    "comments", "likes", "presence", "sale-config", "orders", "payments",
    "impressions", "product-clicks", "follows", "shares", "host-actions",
)
