"""Each rule of the flash-sale inventory, one example each: the answer it names and the stock it leaves."""

from __future__ import annotations

import pytest

from schemas.events import OrderAttempt, OrderResult, Payment, SaleConfig
from streams.flash_sale.inventory import Inventory, check_invariant
from streams.flash_sale.risk import RiskConfig

T0 = 1_700_000_000_000
LOOSE = RiskConfig(max_attempts=100, duplicate_window_ms=0)  # risk rules out of the way


def opened(stock: int = 3, limit: int = 2, ttl_s: int = 10, risk: RiskConfig = LOOSE) -> Inventory:
    inv = Inventory(risk)
    inv.handle(SaleConfig(event_id="open", room_id="r", sku_id="s", action="open", stock=stock, price_cents=500,
                          starts_at=T0 + 1000, ends_at=T0 + 60_000, per_user_limit=limit,
                          reservation_ttl_s=ttl_s, ts=T0))
    return inv


def order(inv: Inventory, oid: str, user: str = "u1", ts: int = T0 + 2000, qty: int = 1,
          room: str = "r", sku: str = "s") -> OrderResult:
    inv.handle(OrderAttempt(order_id=oid, room_id=room, sku_id=sku, user_id=user, quantity=qty, ts=ts))
    check_invariant(inv)
    (result,) = inv.take_outputs()[0].results
    return result


def pay(inv: Inventory, oid: str, action: str = "paid", user: str = "u1", ts: int = T0 + 3000,
        event_id: str | None = None) -> list[OrderResult]:
    inv.handle(Payment(event_id=event_id or f"pay-{oid}-{action}", order_id=oid, room_id="r", sku_id="s",
                       user_id=user, action=action, ts=ts))  # type: ignore[arg-type]
    check_invariant(inv)
    return inv.take_outputs()[0].results


def stock(inv: Inventory) -> tuple[int, int, int, int]:
    s = inv.skus["s"]
    return s.available, s.reserved, s.sold, s.total


def test_accepts_and_holds_until_the_deadline() -> None:
    inv = opened(ttl_s=10)
    r = order(inv, "o1", ts=T0 + 2000)
    assert (r.status, r.reason, r.reserved_until, r.price_cents) == ("accepted", None, T0 + 12_000, 500)
    assert stock(inv) == (2, 1, 0, 3)


@pytest.mark.parametrize(("ts", "reason"), [(T0 + 500, "not_started"), (T0 + 60_000, "ended")])
def test_outside_the_sale_window(ts: int, reason: str) -> None:
    inv = opened()
    assert order(inv, "o1", ts=ts).reason == reason
    assert stock(inv) == (3, 0, 0, 3)


def test_sold_out_never_oversells_and_no_partial_fill() -> None:
    inv = opened(stock=3, limit=3)
    assert order(inv, "o1", user="a", qty=2).status == "accepted"
    assert order(inv, "o2", user="b", qty=2).reason == "sold_out"  # 1 left, 2 asked: refused whole
    assert order(inv, "o3", user="c", qty=1).status == "accepted"
    assert order(inv, "o4", user="d", qty=1).reason == "sold_out"
    assert stock(inv) == (0, 3, 0, 3)


def test_per_user_limit_counts_held_and_paid_units() -> None:
    inv = opened(stock=10, limit=2)
    assert order(inv, "o1", qty=1).status == "accepted"
    assert order(inv, "o2", qty=2).reason == "user_limit"
    pay(inv, "o1")
    assert order(inv, "o3", qty=1).status == "accepted"
    assert order(inv, "o4", qty=1).reason == "user_limit"
    pay(inv, "o3", action="cancelled")  # a cancelled hold frees the user's allowance
    assert order(inv, "o5", qty=1).status == "accepted"


def test_resent_order_id_gets_the_same_answer_and_changes_nothing() -> None:
    inv = opened(stock=1)
    first = order(inv, "o1", user="a")
    assert order(inv, "o1", user="a", ts=T0 + 9000) == first
    # the same id from another user is another order (ids are scoped by user and SKU): its own answer
    foreign = order(inv, "o1", user="someone-else")
    assert (foreign.user_id, foreign.status, foreign.reason) == ("someone-else", "rejected", "sold_out")
    assert order(inv, "o1", user="a") == first
    assert stock(inv) == (0, 1, 0, 1)
    rejected = order(inv, "o2", user="b")
    inv.handle(SaleConfig(event_id="more", room_id="r", sku_id="s", action="restock", stock=5, ts=T0 + 2500))
    assert order(inv, "o2", user="b") == rejected  # still sold_out: the first answer is the answer


def test_payment_sells_and_cancellation_releases_exactly_once() -> None:
    inv = opened(stock=3)
    order(inv, "o1", user="a")
    order(inv, "o2", user="b")
    assert [r.status for r in pay(inv, "o1", user="a")] == ["paid"]
    assert [r.status for r in pay(inv, "o2", user="b", action="cancelled")] == ["cancelled"]
    assert stock(inv) == (2, 0, 1, 3)
    again = pay(inv, "o2", user="b", action="cancelled", event_id="another-cancel")
    assert [(r.status, r.reason) for r in again] == [("payment_refused", "already_final")]
    assert stock(inv) == (2, 0, 1, 3)


def test_resent_payment_event_gets_the_same_answer() -> None:
    inv = opened()
    order(inv, "o1")
    first = pay(inv, "o1", event_id="p1")
    assert pay(inv, "o1", event_id="p1", ts=T0 + 5000) == first
    assert stock(inv) == (2, 0, 1, 3)


def test_event_time_never_releases_a_hold_only_the_timer_does() -> None:
    """The attack's shape: an order stamped long after a hold's deadline, read before that hold's
    in-time payment (another topic; a backlog after a restart), must not take the hold away."""
    inv = opened(ttl_s=1)
    order(inv, "o1", user="a", ts=T0 + 2000)  # held until T0 + 3000
    inv.handle(OrderAttempt(order_id="o2", room_id="r", sku_id="s", user_id="b", ts=T0 + 50_000))
    assert [(r.order_id, r.status) for r in inv.take_outputs()[0].results] == [("o2", "accepted")]
    assert [r.status for r in pay(inv, "o1", user="a", ts=T0 + 2900)] == ["paid"]  # stamped in time: pays
    assert stock(inv) == (1, 1, 1, 3)


def test_a_payment_answered_before_its_order_existed_keeps_that_answer() -> None:
    inv = opened()
    first = pay(inv, "o1", user="a", event_id="p1")
    assert [(r.status, r.reason) for r in first] == [("payment_refused", "unknown_order")]
    order(inv, "o1", user="a")
    again = pay(inv, "o1", user="a", event_id="p1")  # the very same payment, re-sent
    assert [(r.status, r.reason) for r in again] == [("payment_refused", "unknown_order")]
    assert stock(inv) == (2, 1, 0, 3)


def test_a_payment_stamped_after_the_deadline_is_refused_and_releases_the_hold_at_once() -> None:
    inv = opened(ttl_s=1)
    order(inv, "o1", user="a", ts=T0 + 2000)
    late = pay(inv, "o1", user="a", ts=T0 + 3001)
    assert [(r.status, r.reason) for r in late] == [("expired", None), ("payment_refused", "reservation_expired")]
    assert stock(inv) == (3, 0, 0, 3)


def test_wall_clock_tick_expires_a_quiet_partition_without_moving_event_time() -> None:
    inv = opened(ttl_s=1)
    order(inv, "o1", ts=T0 + 2000)
    grace = inv.grace_ms
    assert not inv.has_due(T0 + 3000 + grace) and inv.has_due(T0 + 3001 + grace)
    inv.tick(T0 + 3001 + grace)
    (expired,) = inv.take_outputs()[0].results
    assert (expired.status, expired.ts) == ("expired", T0 + 3001)  # stamped with the deadline
    assert inv.skus["s"].clock == T0 + 2000
    assert stock(inv) == (3, 0, 0, 3)


def test_payment_at_the_deadline_still_counts() -> None:
    inv = opened(ttl_s=1)
    order(inv, "o1", ts=T0 + 2000)
    assert [r.status for r in pay(inv, "o1", ts=T0 + 3000)] == ["paid"]


def test_close_stops_new_orders_but_honours_holds() -> None:
    inv = opened()
    order(inv, "o1", user="a")
    inv.handle(SaleConfig(event_id="close", room_id="r", sku_id="s", action="close", ts=T0 + 2100))
    assert order(inv, "o2", user="b", ts=T0 + 2200).reason == "ended"
    assert [r.status for r in pay(inv, "o1", user="a", ts=T0 + 2300)] == ["paid"]


def test_restock_applies_once_per_event_id() -> None:
    inv = opened(stock=1)
    restock = SaleConfig(event_id="rs", room_id="r", sku_id="s", action="restock", stock=4, ts=T0 + 100)
    inv.handle(restock)
    inv.handle(restock)
    assert stock(inv) == (5, 0, 0, 5)


def test_config_that_cannot_apply_is_reported_not_applied() -> None:
    inv = Inventory()
    inv.handle(SaleConfig(event_id="rs", room_id="r", sku_id="s", action="restock", stock=4, ts=T0))
    inv.handle(SaleConfig(event_id="c", room_id="r", sku_id="s", action="close", ts=T0))
    errors = inv.take_outputs()[0].config_errors
    assert [cfg.event_id for cfg, _ in errors] == ["rs", "c"]
    assert all("never opened" in why for _, why in errors)
    inv = opened()
    inv.handle(SaleConfig(event_id="o2", room_id="other-room", sku_id="s", action="open", stock=9, price_cents=1,
                          starts_at=T0, ends_at=T0 + 10, ts=T0))
    ((_cfg, why),) = inv.take_outputs()[0].config_errors
    assert "room r" in why and stock(inv) == (3, 0, 0, 3)


def test_no_sale_and_wrong_room() -> None:
    inv = opened()
    assert order(inv, "o1", sku="unknown").reason == "no_sale"
    assert order(inv, "o2", room="elsewhere").reason == "invalid"


def test_unknown_order_and_someone_elses_order_are_refused() -> None:
    inv = opened()
    order(inv, "o1", user="a")
    assert [(r.status, r.reason) for r in pay(inv, "nope", user="a")] == [("payment_refused", "unknown_order")]
    # another user's pay and cancel for a's order id address no order of theirs (ids are scoped by user) ...
    assert [(r.status, r.reason) for r in pay(inv, "o1", user="b")] == [("payment_refused", "unknown_order")]
    assert [(r.user_id, r.status, r.reason) for r in pay(inv, "o1", user="b", action="cancelled")] == [
        ("b", "payment_refused", "unknown_order")]
    assert stock(inv) == (2, 1, 0, 3)
    # ... and never change what the owner gets: a's own payment pays
    assert [(r.user_id, r.status) for r in pay(inv, "o1", user="a")] == [("a", "paid")]


def test_blocked_user_is_refused_before_anything_else() -> None:
    inv = opened(risk=RiskConfig(blocklist=frozenset({"bot"})))
    assert order(inv, "o1", user="bot").reason == "blocked"
    assert stock(inv) == (3, 0, 0, 3)


def test_stock_updates_come_once_per_changed_sku_per_batch() -> None:
    inv = opened(stock=5, limit=5)
    inv.take_outputs()
    for i in range(3):
        inv.handle(OrderAttempt(order_id=f"o{i}", room_id="r", sku_id="s", user_id=f"u{i}", ts=T0 + 2000))
    _, updates = inv.take_outputs()
    assert [(u.available, u.reserved, u.sold, u.total) for u in updates] == [(2, 3, 0, 5)]


def test_applied_configs_are_reported_once_and_rejected_ones_never() -> None:
    """The warehouse stores sale configs from this list (issue 14.6): a restock of a never-opened SKU
    is not in it, a re-sent config id is not in it twice."""
    inv = Inventory()
    never = SaleConfig(event_id="rs", room_id="r", sku_id="s", action="restock", stock=4, ts=T0)
    opening = SaleConfig(event_id="o1", room_id="r", sku_id="s", action="open", stock=3, price_cents=100,
                         starts_at=T0, ends_at=T0 + 10_000, ts=T0)
    restock = SaleConfig(event_id="rs2", room_id="r", sku_id="s", action="restock", stock=2, ts=T0 + 1)
    for cfg in (never, opening, opening, restock, restock):
        inv.handle(cfg)
    out = inv.take_outputs()[0]
    assert [c.event_id for c in out.applied_configs] == ["o1", "rs2"]
    assert [c.event_id for c, _ in out.config_errors] == ["rs"]


def test_a_buyer_record_stays_bounded_and_answers_beyond_the_bound_repeat() -> None:
    """A buyer sending thousands of order ids (and stray payments) cannot grow their changelog record
    without bound: past the bound a new id is refused as blocked, not remembered, and a re-send of it
    gets the same answer; the orders before the bound keep theirs."""
    import msgspec

    from streams.flash_sale.inventory import MAX_ORDERS_PER_BUYER, MAX_STRAY_PAYMENTS

    inv = opened(stock=1, limit=1)
    first = order(inv, "o0")
    assert first.status == "accepted"
    for i in range(1, MAX_ORDERS_PER_BUYER):
        assert order(inv, f"o{i}").reason in ("user_limit", "rate_limited")
    over = order(inv, "o-over")
    assert (over.status, over.reason) == ("rejected", "blocked")
    assert (order(inv, "o-over").status, order(inv, "o-over").reason) == ("rejected", "blocked")
    assert order(inv, "o0").status == "accepted"  # remembered orders keep their first answer
    for i in range(MAX_STRAY_PAYMENTS * 3):
        (answer,) = pay(inv, f"nope-{i}", event_id=f"stray-{i}")
        assert (answer.status, answer.reason) == ("payment_refused", "unknown_order")
    user = inv.users[("s", "u1")]
    assert len(user.orders) == MAX_ORDERS_PER_BUYER and len(user.stray_payments) == MAX_STRAY_PAYMENTS
    assert len(msgspec.json.encode(user)) < 200_000  # its changelog record: far below Kafka's 1 MB limit
    assert stock(inv) == (0, 1, 0, 1)
