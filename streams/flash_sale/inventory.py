"""The flash-sale inventory of one partition: every decision, no I/O.

One :class:`Inventory` holds the SKUs of one Kafka partition.  Partitioning is the lock: all
sale-config, order and payment events of a SKU reach the same partition owner, which feeds them
here one at a time, in log order.  Each call appends its answers to :attr:`Inventory.out` and marks
the state records it touched; the worker writes answers, touched records and input offsets in one
Kafka transaction per batch.

Time is event time, kept **per SKU**: a decision on a SKU is taken at the largest ``ts`` of that
SKU's events so far, so a replay of the same log gives the same answers, and an event stamped in
the future (at most the gate's allowed skew) moves time for its own SKU only, never for the other
SKUs of its partition.

Holds and payments: a hold made at ``t`` lasts until ``reserved_until = t + ttl``.  A payment
stamped at or before ``reserved_until`` pays as long as the hold has not been released, and a hold
is released only once ``reserved_until + grace_ms`` has passed, and only by :meth:`Inventory.tick`,
the wall-clock timer, which the shell calls only while no input of the partition is waiting to be
read (asked of the broker at that moment).  Event time never releases a hold: Kafka orders messages
within one topic-partition only, so an order that reached Kafka after a payment can still be read
before it.  So a payment stamped
before the deadline that reaches the log within ``grace_ms`` after it always pays, however far
behind the worker is, after a restart, and in a replay.  A payment stamped after the deadline is
refused (``reservation_expired``) and releases the hold at once.

Idempotency keys are scoped, never global: an order is (sku_id, user_id, order_id), a payment is
(sku_id, user_id, order_id, event_id).  Another user who sends the same ids addresses orders of
their own, so a foreign pay, cancel or attempt never changes what the owner gets.

Invariant after every call: ``available + reserved + sold == total`` (stock ever added) and
``available >= 0`` for every SKU.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from schemas.events import Alert, OrderAttempt, OrderResult, Payment, SaleConfig, StockUpdate
from streams.flash_sale.risk import RiskConfig, count_rejection, screen_attempt
from streams.flash_sale.state import (
    CANCELLED,
    EXPIRED,
    PAID,
    REJECTED,
    RESERVED,
    Answer,
    OrderRecord,
    SkuState,
    Terms,
    UserState,
    sku_key,
    user_key,
)

FlashEvent = SaleConfig | OrderAttempt | Payment

_sku_decoder = msgspec.json.Decoder(SkuState)
_user_decoder = msgspec.json.Decoder(UserState)

#: How long after a hold's deadline a payment stamped before it may still arrive and pay (ms).
DEFAULT_PAYMENT_GRACE_MS = 3_000
_encoder = msgspec.json.Encoder()


#: What one buyer's record on one SKU remembers at most: orders (with any answer), payments that named
#: no order of theirs, and payment events per order.  Why: the record is one changelog record, and a
#: buyer sending thousands of order ids grew it past Kafka's 1 MB message limit, which failed the
#: commit.  Beyond the bound a NEW id is answered and not remembered: a new order is refused as
#: ``blocked``; the counts never go down, so a re-send gets the same answer.  Far beyond any honest
#: buyer (the per-user limit is a few units; the gateway rate-limits clicks).
MAX_ORDERS_PER_BUYER = 200
MAX_STRAY_PAYMENTS = 100
MAX_PAYMENTS_PER_ORDER = 20


@dataclass
class Outputs:
    """What one batch of decisions produced, in decision order."""

    results: list[OrderResult] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    config_errors: list[tuple[SaleConfig, str]] = field(default_factory=list)
    """Sale-config events that could not apply, with why (the worker dead-letters them)."""
    applied_configs: list[SaleConfig] = field(default_factory=list)
    """Sale-config events that took effect, once each (the worker produces them to
    ``sale-config-applied``, the warehouse's source of sale configs)."""


class Inventory:
    """All SKUs of one partition and the decisions on them."""

    def __init__(self, risk: RiskConfig | None = None, grace_ms: int = DEFAULT_PAYMENT_GRACE_MS) -> None:
        self.risk = risk or RiskConfig()
        self.grace_ms = grace_ms
        self.skus: dict[str, SkuState] = {}
        self.users: dict[tuple[str, str], UserState] = {}
        self.out = Outputs()
        # Holds by deadline, for the wall-clock timer; lazy (entries of orders already paid, cancelled
        # or expired are skipped when popped).
        self._timer: list[tuple[int, str, str, str]] = []  # (reserved_until, sku, user, order_id)
        # Touched records, in first-touch order (dicts as ordered sets: deterministic, no sort per batch).
        self._dirty_skus: dict[str, None] = {}
        self._dirty_users: dict[tuple[str, str], None] = {}

    # ----------------------------------------------------------------- entry points

    def handle(self, event: FlashEvent) -> None:
        """Decide one event at its SKU's event time, after releasing that SKU's holds past their grace."""
        now = self._advance(event.sku_id, event.ts)
        if isinstance(event, OrderAttempt):
            self.attempt(event, now)
        elif isinstance(event, Payment):
            self.pay(event, now)
        else:
            self.configure(event, now)

    def tick(self, wall_now: int) -> None:
        """The timer: release every hold whose deadline plus grace has passed by ``wall_now``.

        Call it only when no input of the partition is waiting to be decided (the shell checks):
        a waiting payment stamped before its deadline must pay, not find its hold gone.  It does not
        move any SKU's event time."""
        timer = self._timer
        while timer and timer[0][0] + self.grace_ms < wall_now:
            until, sku_id, user_id, order_id = heapq.heappop(timer)
            self._release(sku_id, user_id, order_id, until)

    def has_due(self, wall_now: int) -> bool:
        """Whether :meth:`tick` at ``wall_now`` may release a hold (cheap: a heap peek)."""
        return bool(self._timer) and self._timer[0][0] + self.grace_ms < wall_now

    def take_outputs(self) -> tuple[Outputs, list[StockUpdate]]:
        """Answers since the last call, plus one StockUpdate per SKU whose stock or sale changed."""
        out, self.out = self.out, Outputs()
        stock = [self.stock_update(sku) for sku in self._dirty_skus if self.skus[sku].terms]
        return out, stock

    def changed_records(self) -> list[tuple[bytes, bytes]]:
        """Changelog records (key, JSON) of every state record touched since the last call."""
        encode, skus, users = _encoder.encode, self.skus, self.users
        records = [(sku_key(s), encode(skus[s])) for s in self._dirty_skus]
        records += [(user_key(*k), encode(users[k])) for k in self._dirty_users]
        self._dirty_skus.clear()
        self._dirty_users.clear()
        return records

    @classmethod
    def restore(
        cls, records: Iterable[tuple[bytes, bytes | None]], risk: RiskConfig | None = None,
        grace_ms: int = DEFAULT_PAYMENT_GRACE_MS,
    ) -> Inventory:
        """Rebuild from changelog records in log order (the last value of a key wins)."""
        latest: dict[bytes, bytes | None] = {}
        for key, value in records:
            latest[key] = value
        inv = cls(risk, grace_ms)
        for key, value in latest.items():
            if value is None:
                continue
            if key.startswith(b"s|"):
                sku = _sku_decoder.decode(value)
                inv.skus[sku.sku_id] = sku
            elif key.startswith(b"u|"):
                user = _user_decoder.decode(value)
                inv.users[(user.sku_id, user.user_id)] = user
                for order in user.orders.values():
                    if order.status == RESERVED and order.reserved_until is not None:
                        inv._hold(user.sku_id, user.user_id, order.order_id, order.reserved_until)
        heapq.heapify(inv._timer)
        return inv

    def stock_update(self, sku_id: str) -> StockUpdate:
        sku = self.skus[sku_id]
        return StockUpdate(
            room_id=sku.room_id, sku_id=sku_id, available=sku.available, reserved=sku.reserved,
            sold=sku.sold, total=sku.total, price_cents=sku.terms.price_cents if sku.terms else 0,
            ts=sku.clock,
        )

    # ----------------------------------------------------------------- sale lifecycle

    def configure(self, cfg: SaleConfig, now: int) -> None:
        """Open (or re-time) a sale, restock it or close it. A config event_id applies once."""
        sku = self.skus.get(cfg.sku_id)
        if sku is not None and cfg.event_id in sku.config_ids:
            return
        if sku is not None and sku.terms is not None and sku.room_id != cfg.room_id:
            self.out.config_errors.append((cfg, f"sku {cfg.sku_id} is on sale in room {sku.room_id}"))
            return
        if cfg.action == "open":
            assert cfg.stock is not None and cfg.price_cents is not None
            assert cfg.starts_at is not None and cfg.ends_at is not None
            if sku is None:
                sku = self.skus[cfg.sku_id] = SkuState(sku_id=cfg.sku_id, room_id=cfg.room_id, clock=now)
            first_open = sku.terms is None
            sku.room_id = cfg.room_id
            sku.terms = Terms(
                price_cents=cfg.price_cents, starts_at=cfg.starts_at, ends_at=cfg.ends_at,
                per_user_limit=cfg.per_user_limit, ttl_ms=cfg.reservation_ttl_s * 1000,
            )
            sku.closed_at = None
            if first_open:  # a later open re-times the sale; stock only changes by restock
                sku.total += cfg.stock
                sku.available += cfg.stock
        elif sku is None or sku.terms is None:
            self.out.config_errors.append((cfg, f"{cfg.action} of sku {cfg.sku_id} that was never opened"))
            return
        elif cfg.action == "restock":
            assert cfg.stock is not None
            sku.total += cfg.stock
            sku.available += cfg.stock
        else:  # close: no new orders; existing holds stay payable until they expire
            sku.closed_at = now
        sku.config_ids.append(cfg.event_id)
        self.out.applied_configs.append(cfg)
        self._dirty_skus[sku.sku_id] = None

    # ----------------------------------------------------------------- order attempts

    def attempt(self, order: OrderAttempt, now: int) -> None:
        """Accept (reserve) or reject one order attempt; a known order_id gets its first answer again."""
        known = self._order(order.sku_id, order.user_id, order.order_id)
        if known is not None:  # idempotent: the same buyer re-sent it; same answer, nothing changes
            self._answer(order.sku_id, known, known.first, reserved_until=known.reserved_until)
            return
        user = self._user(order.sku_id, order.user_id)
        if len(user.orders) >= MAX_ORDERS_PER_BUYER:  # answered, not remembered (see the bound)
            self.out.results.append(OrderResult(
                order_id=order.order_id, room_id=order.room_id, sku_id=order.sku_id, user_id=order.user_id,
                status="rejected", reason="blocked", quantity=order.quantity, attempt_ts=order.ts, ts=now,
            ))
            return
        sku = self.skus.get(order.sku_id)
        reason = self._reject_reason(sku, user, order, now)
        if reason is None:
            assert sku is not None and sku.terms is not None
            until = now + sku.terms.ttl_ms
            record = self._new_order(order, user, sku.terms.price_cents, Answer("accepted", None, now), RESERVED)
            record.reserved_until = until
            sku.available -= order.quantity
            sku.reserved += order.quantity
            user.active_units += order.quantity
            self._hold(order.sku_id, order.user_id, order.order_id, until, push=True)
            self._dirty_skus[order.sku_id] = None
            self._answer(order.sku_id, record, record.first, reserved_until=until)
            return
        price = sku.terms.price_cents if sku is not None and sku.terms is not None else 0
        record = self._new_order(order, user, price, Answer("rejected", reason, now), REJECTED)
        record.final_ts = now
        self._answer(order.sku_id, record, record.first)
        room = sku.room_id if sku is not None else order.room_id
        if sku is None:
            sku = self.skus[order.sku_id] = SkuState(sku_id=order.sku_id, room_id=order.room_id, clock=now)
        alert = count_rejection(self.risk, sku.spikes, reason, now, room_id=room, sku_id=order.sku_id)
        if alert is not None:
            self.out.alerts.append(alert)
        self._dirty_skus[order.sku_id] = None

    def _reject_reason(self, sku: SkuState | None, user: UserState, order: OrderAttempt, now: int) -> str | None:
        """The first rule that refuses this new attempt, in a fixed order, or None to accept."""
        if sku is None or sku.terms is None:
            return "no_sale"
        if sku.room_id != order.room_id:
            return "invalid"
        risk = screen_attempt(self.risk, user, order.quantity, now)
        if risk is not None:
            return risk
        terms = sku.terms
        if now < terms.starts_at:
            return "not_started"
        if now >= terms.ends_at or sku.closed_at is not None:
            return "ended"
        if user.active_units + order.quantity > terms.per_user_limit:
            return "user_limit"
        if order.quantity > sku.available:
            return "sold_out"
        return None

    # ----------------------------------------------------------------- payments

    def pay(self, payment: Payment, now: int) -> None:
        """Confirm (paid) or cancel a held order; a payment event_id is answered once, then repeated."""
        record = self._order(payment.sku_id, payment.user_id, payment.order_id)
        stray = self.users.get((payment.sku_id, payment.user_id))
        if record is not None and stray is not None and payment.event_id in stray.stray_payments:
            record = None  # this payment was answered before its order existed: that answer stands
        if record is None:  # no such order of THIS user (another user's order with that id is not theirs)
            owner = self._user(payment.sku_id, payment.user_id)
            answer = owner.stray_payments.get(payment.event_id)
            if answer is None:
                answer = Answer("payment_refused", "unknown_order", now)
                if len(owner.stray_payments) < MAX_STRAY_PAYMENTS:
                    owner.stray_payments[payment.event_id] = answer
                    self._dirty_users[(payment.sku_id, payment.user_id)] = None
            self.out.results.append(self._stray_result(payment, answer))
            return
        seen = record.payments.get(payment.event_id)
        if seen is not None:
            self._answer(payment.sku_id, record, seen, reserved_until=record.reserved_until)
            return
        if len(record.payments) >= MAX_PAYMENTS_PER_ORDER:  # only a final order has payments: no side effect
            answer = self._settle(payment, record, now)
            self._answer(payment.sku_id, record, answer, reserved_until=record.reserved_until)
            return
        answer = self._settle(payment, record, now)
        record.payments[payment.event_id] = answer
        self._dirty_users[(payment.sku_id, record.user_id)] = None
        self._answer(payment.sku_id, record, answer, reserved_until=record.reserved_until)

    def _settle(self, payment: Payment, record: OrderRecord, now: int) -> Answer:
        late = (payment.action == "paid" and record.status == RESERVED and record.reserved_until is not None
                and payment.ts > record.reserved_until)
        if late:  # stamped after the deadline: the hold ends now, whatever the clocks say
            assert record.reserved_until is not None
            self._release(payment.sku_id, record.user_id, record.order_id, record.reserved_until)
        if record.status == EXPIRED:
            reason = "reservation_expired" if payment.action == "paid" else "already_final"
            return Answer("payment_refused", reason, now)
        if record.status != RESERVED:
            return Answer("payment_refused", "already_final", now)
        sku = self.skus[payment.sku_id]
        user = self.users[(payment.sku_id, record.user_id)]
        sku.reserved -= record.quantity
        if payment.action == "paid":
            sku.sold += record.quantity
            record.status = PAID
        else:
            sku.available += record.quantity
            user.active_units -= record.quantity
            record.status = CANCELLED
        record.final_ts = now
        self._dirty_skus[payment.sku_id] = None
        return Answer(record.status, None, now)

    def _order(self, sku_id: str, user_id: str, order_id: str) -> OrderRecord | None:
        user = self.users.get((sku_id, user_id))
        return None if user is None else user.orders.get(order_id)

    # ----------------------------------------------------------------- holds and time

    def _hold(self, sku_id: str, user_id: str, order_id: str, until: int, *, push: bool = False) -> None:
        if push:
            heapq.heappush(self._timer, (until, sku_id, user_id, order_id))
        else:  # restore: heapified once at the end
            self._timer.append((until, sku_id, user_id, order_id))

    def _release(self, sku_id: str, user_id: str, order_id: str, until: int) -> None:
        """Expire one hold, once (an order already paid, cancelled or expired is left alone)."""
        user = self.users[(sku_id, user_id)]
        record = user.orders[order_id]
        if record.status != RESERVED:
            return
        sku = self.skus[sku_id]
        sku.reserved -= record.quantity
        sku.available += record.quantity
        user.active_units -= record.quantity
        record.status = EXPIRED
        record.final_ts = max(until + 1, 0)
        self._dirty_skus[sku_id] = None
        self._dirty_users[(sku_id, user_id)] = None
        self._answer(sku_id, record, Answer(EXPIRED, None, record.final_ts), reserved_until=until)

    def _advance(self, sku_id: str, ts: int) -> int:
        """Move ``sku_id``'s event time to ``ts`` if later; return it.

        Event time never releases a hold: Kafka orders messages within one topic-partition only, so an
        order read before an earlier payment (another topic, or a backlog after a restart) must not
        take that payment's hold away.  Holds end by the timer (:meth:`tick`), by a payment stamped
        after the deadline, or by payment / cancellation."""
        sku = self.skus.get(sku_id)
        if sku is None:
            return ts
        if ts > sku.clock:
            sku.clock = ts
            self._dirty_skus[sku_id] = None
        return sku.clock

    def _user(self, sku_id: str, user_id: str) -> UserState:
        key = (sku_id, user_id)
        user = self.users.get(key)
        if user is None:
            user = self.users[key] = UserState(sku_id=sku_id, user_id=user_id)
        self._dirty_users[key] = None
        return user

    def _new_order(
        self, order: OrderAttempt, user: UserState, price: int, first: Answer, status: str
    ) -> OrderRecord:
        record = OrderRecord(
            order_id=order.order_id, user_id=order.user_id, room_id=order.room_id, quantity=order.quantity,
            price_cents=price, attempt_ts=order.ts, first=first, status=status,
        )
        user.orders[order.order_id] = record
        return record

    def _answer(self, sku_id: str, record: OrderRecord, answer: Answer, *, reserved_until: int | None = None) -> None:
        self.out.results.append(
            OrderResult(
                order_id=record.order_id, room_id=record.room_id, sku_id=sku_id, user_id=record.user_id,
                status=answer.status, reason=answer.reason,  # type: ignore[arg-type]
                quantity=record.quantity, price_cents=record.price_cents, reserved_until=reserved_until,
                attempt_ts=record.attempt_ts, ts=answer.ts,
            )
        )

    @staticmethod
    def _stray_result(payment: Payment, answer: Answer) -> OrderResult:
        return OrderResult(
            order_id=payment.order_id, room_id=payment.room_id, sku_id=payment.sku_id, user_id=payment.user_id,
            status=answer.status, reason=answer.reason,  # type: ignore[arg-type]
            attempt_ts=payment.ts, ts=answer.ts,
        )


def check_invariant(inv: Inventory) -> None:
    """Raise AssertionError if any SKU breaks ``available + reserved + sold == total`` or goes negative."""
    for sku in inv.skus.values():
        if sku.available + sku.reserved + sku.sold != sku.total:
            raise AssertionError(f"{sku.sku_id}: {sku.available}+{sku.reserved}+{sku.sold} != {sku.total}")
        if min(sku.available, sku.reserved, sku.sold) < 0:
            raise AssertionError(f"{sku.sku_id}: negative stock {sku}")
