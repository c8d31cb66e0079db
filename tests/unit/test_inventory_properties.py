"""Property tests of the flash-sale inventory: random interleavings of sale configs, attempts,
re-sent attempts, payments, cancellations, timer ticks and restocks."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import OrderAttempt, OrderResult, Payment, SaleConfig
from streams.flash_sale.inventory import Inventory, check_invariant
from streams.flash_sale.risk import RiskConfig
from streams.flash_sale.state import RESERVED

T0 = 1_700_000_000_000
SKUS = ["sku-a", "sku-b"]
USERS = [f"u{i}" for i in range(6)]
ORDERS = [f"o{i}" for i in range(40)]
PAYMENTS = [f"p{i}" for i in range(25)]
RISK = RiskConfig(max_attempts=3, window_ms=500, duplicate_window_ms=100, blocklist=frozenset({"u5"}),
                  spike_threshold=3, spike_bucket_ms=1000, alert_cooldown_ms=2000)


class Tick:
    """The wall-clock timer firing at ``ts``."""

    def __init__(self, ts: int) -> None:
        self.ts = ts


@st.composite
def scenarios(draw: st.DrawFn) -> list[object]:
    """A log of events with mostly increasing timestamps (some late), opens usually first."""
    n = draw(st.integers(1, 80))
    t = T0
    events: list[object] = []
    cfg_ids = iter(range(10_000))
    for sku in SKUS:
        if draw(st.booleans()) or sku == SKUS[0]:
            events.append(SaleConfig(
                event_id=f"c{next(cfg_ids)}", room_id="r1", sku_id=sku, action="open",
                stock=draw(st.integers(0, 8)), price_cents=draw(st.integers(0, 5000)),
                starts_at=T0 + draw(st.integers(0, 300)), ends_at=T0 + draw(st.integers(400, 20_000)),
                per_user_limit=draw(st.integers(1, 4)), reservation_ttl_s=draw(st.integers(1, 5)), ts=t,
            ))
    for _ in range(n):
        t += draw(st.integers(0, 700))
        ts = max(T0, t - draw(st.sampled_from([0, 0, 0, 50, 2000])))  # sometimes late
        kind = draw(st.sampled_from(["order", "order", "order", "resend", "pay", "pay", "tick", "cfg"]))
        sku = draw(st.sampled_from(SKUS))
        if kind in ("order", "resend"):
            prior = [e for e in events if isinstance(e, OrderAttempt)]
            if kind == "resend" and prior:
                events.append(draw(st.sampled_from(prior)))
                continue
            events.append(OrderAttempt(
                order_id=draw(st.sampled_from(ORDERS)), room_id=draw(st.sampled_from(["r1", "r1", "r1", "r2"])),
                sku_id=sku, user_id=draw(st.sampled_from(USERS)), quantity=draw(st.integers(1, 3)), ts=ts,
            ))
        elif kind == "pay":
            events.append(Payment(
                event_id=draw(st.sampled_from(PAYMENTS)), order_id=draw(st.sampled_from(ORDERS)), room_id="r1",
                sku_id=sku, user_id=draw(st.sampled_from(USERS)),
                action=draw(st.sampled_from(["paid", "paid", "cancelled"])), ts=ts,
            ))
        elif kind == "tick":
            events.append(Tick(t + draw(st.integers(0, 3000))))
        else:
            action = draw(st.sampled_from(["restock", "restock", "close", "open"]))
            events.append(SaleConfig(
                event_id=f"c{next(cfg_ids)}", room_id="r1", sku_id=sku, action=action,
                stock=draw(st.integers(1, 5)), price_cents=100, starts_at=T0, ends_at=T0 + 30_000, ts=ts,
            ))
    return events


def run(inv: Inventory, events: list[object], log: list[tuple[bytes, bytes]] | None = None) -> list[OrderResult]:
    """Feed events one by one (each its own batch), checking the invariant after every step."""
    results: list[OrderResult] = []
    for event in events:
        if isinstance(event, Tick):
            inv.tick(event.ts)
        else:
            inv.handle(event)  # type: ignore[arg-type]
        check_invariant(inv)
        out, _ = inv.take_outputs()
        results += out.results
        records = inv.changed_records()
        if log is not None:
            log += records
    return results


def final_tick(inv: Inventory) -> list[OrderResult]:
    inv.tick(T0 + 10**9)
    check_invariant(inv)
    return inv.take_outputs()[0].results


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_stock_is_conserved_and_never_negative(events: list[object]) -> None:
    inv = Inventory(RISK)
    results = run(inv, events) + final_tick(inv)
    added: dict[str, int] = defaultdict(int)  # stock ever added, counted from the log itself
    for e in events:
        if isinstance(e, SaleConfig) and e.stock is not None:
            opened = e.sku_id in added
            if (e.action == "open" and not opened) or (e.action == "restock" and opened):
                added[e.sku_id] += e.stock
    paid: dict[str, int] = defaultdict(int)  # units sold, counted from the answers
    for r in results:
        if r.status == "paid":
            paid[r.sku_id] += r.quantity
    for sku in inv.skus.values():
        assert sku.total == added[sku.sku_id]
        assert sku.sold == paid[sku.sku_id]
        assert sku.reserved == 0  # every hold ended once the timer passed all deadlines
    for user in inv.users.values():
        held = sum(o.quantity for o in user.orders.values() if o.status in (RESERVED, "paid"))
        assert user.active_units == held


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_order_gets_one_decision_and_one_final_state(events: list[object]) -> None:
    inv = Inventory(RISK)
    results = run(inv, events) + final_tick(inv)
    by_order: dict[tuple[str, str, str], list[OrderResult]] = defaultdict(list)
    for r in results:  # an order is (sku, user, order_id): ids are scoped by buyer and SKU
        by_order[(r.sku_id, r.user_id, r.order_id)].append(r)
    attempts = {(e.sku_id, e.user_id, e.order_id) for e in events if isinstance(e, OrderAttempt)}
    sent: dict[tuple[str, str, str], int] = defaultdict(int)
    for e in events:
        if isinstance(e, OrderAttempt):
            sent[(e.sku_id, e.user_id, e.order_id)] += 1
    for key in attempts:
        answers = by_order[key]
        decisions = [r for r in answers if r.status in ("accepted", "rejected")]
        assert len(decisions) == sent[key]  # one answer per attempt sent ...
        assert all(d == decisions[0] for d in decisions)  # ... and re-sends get the very same one
        finals = [r for r in answers if r.status in ("paid", "cancelled", "expired")]
        if decisions[0].status == "accepted":
            assert len(finals) == 1
        else:
            assert finals == []
    for r in results:
        if r.status == "rejected":
            assert r.reason is not None


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_replay_gives_identical_results(events: list[object]) -> None:
    first = run(Inventory(RISK), events)
    second = run(Inventory(RISK), events)
    assert first == second


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.data())
def test_restore_from_changelog_then_continue_equals_uninterrupted(events: list[object], data: st.DataObject) -> None:
    """A crash after any committed batch: the next owner restores from the changelog and goes on."""
    split = data.draw(st.integers(0, len(events)))
    whole = Inventory(RISK)
    expected = run(whole, events) + final_tick(whole)

    log: list[tuple[bytes, bytes]] = []
    before = run(Inventory(RISK), events[:split], log)
    restored = Inventory.restore(log, RISK)
    check_invariant(restored)
    after = run(restored, events[split:]) + final_tick(restored)
    assert before + after == expected
    assert {k: (s.available, s.reserved, s.sold, s.total) for k, s in restored.skus.items()} == {
        k: (s.available, s.reserved, s.sold, s.total) for k, s in whole.skus.items()
    }


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_batching_does_not_change_answers(events: list[object]) -> None:
    """Deciding a poll batch at once equals deciding event by event (the worker batches)."""
    one_by_one = run(Inventory(RISK), events)
    inv = Inventory(RISK)
    for event in events:
        if isinstance(event, Tick):
            inv.tick(event.ts)
        else:
            inv.handle(event)  # type: ignore[arg-type]
    assert inv.take_outputs()[0].results == one_by_one
