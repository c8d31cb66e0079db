"""The flash-sale state of one partition, as plain records that encode to the changelog.

Why msgspec Structs: the same objects are mutated by the decisions (microseconds each) and written
as they are to the compacted changelog topic after each batch, so restoring after ``kill -9`` is
decoding the last record of each key, with no mapping layer in between that could drift.

Keys of the changelog (``|`` cannot occur in an Id, so keys never collide):

- ``s|<sku>``           :class:`SkuState`  (sale terms, stock counters, rejection counters)
- ``u|<sku>|<user>``    :class:`UserState` (the user's orders on that SKU, attempt window)

Event time is kept per SKU (:attr:`SkuState.clock`), never per partition: one producer's clock (or an
attacker's timestamp) may move time only for the SKU it names, by at most the allowed skew.
"""

from __future__ import annotations

import msgspec

#: Order statuses kept in state. ``reserved`` is the only one that is not final.
RESERVED = "reserved"
REJECTED = "rejected"
PAID = "paid"
CANCELLED = "cancelled"
EXPIRED = "expired"
FINAL_STATUSES = frozenset({REJECTED, PAID, CANCELLED, EXPIRED})


class Terms(msgspec.Struct, kw_only=True):
    """What an ``open`` sale-config said: when, at what price, how much per user, how long a hold lasts."""

    price_cents: int
    starts_at: int
    ends_at: int
    per_user_limit: int
    ttl_ms: int


class SpikeState(msgspec.Struct, kw_only=True):
    """Rejections per reason in the current event-time bucket, totals, and when each last alerted."""

    bucket_start: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    totals: dict[str, int] = msgspec.field(default_factory=dict)
    last_alert: dict[str, int] = msgspec.field(default_factory=dict)


class SkuState(msgspec.Struct, kw_only=True):
    """One SKU: its sale (``terms`` is None until opened) and stock.

    Invariant: ``available + reserved + sold == total`` and every counter ``>= 0``; ``total`` is the
    stock ever added (the open plus every restock).
    """

    sku_id: str
    room_id: str
    terms: Terms | None = None
    closed_at: int | None = None
    total: int = 0
    available: int = 0
    reserved: int = 0
    sold: int = 0
    clock: int = 0
    """This SKU's event time: the largest ``ts`` of its orders, payments and configs decided so far."""
    config_ids: list[str] = msgspec.field(default_factory=list)
    spikes: SpikeState = msgspec.field(default_factory=SpikeState)


class Answer(msgspec.Struct, array_like=True):
    """A stored answer (status, reason, ts) so that a re-sent event gets the very same one back."""

    status: str
    reason: str | None
    ts: int


class OrderRecord(msgspec.Struct, kw_only=True):
    """One order_id on one SKU: the first answer it got and where it stands now."""

    order_id: str
    user_id: str
    room_id: str
    quantity: int
    price_cents: int
    attempt_ts: int
    first: Answer
    status: str
    reserved_until: int | None = None
    final_ts: int | None = None
    payments: dict[str, Answer] = msgspec.field(default_factory=dict)


class UserState(msgspec.Struct, kw_only=True):
    """One buyer on one SKU: orders, units held (reserved + paid), recent attempt times."""

    sku_id: str
    user_id: str
    orders: dict[str, OrderRecord] = msgspec.field(default_factory=dict)
    active_units: int = 0
    attempts: list[int] = msgspec.field(default_factory=list)
    last_attempt_ts: int | None = None
    last_quantity: int | None = None
    stray_payments: dict[str, Answer] = msgspec.field(default_factory=dict)


def sku_key(sku_id: str) -> bytes:
    return f"s|{sku_id}".encode()


def user_key(sku_id: str, user_id: str) -> bytes:
    return f"u|{sku_id}|{user_id}".encode()

