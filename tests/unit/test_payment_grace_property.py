"""Issue 14.4's rule as a property: no interleaving of payments, other events and timer ticks refuses a
payment stamped before its hold's deadline that reaches the log within the grace.

The model of the shell: events are decided in the order they reach the log (their arrival time);
every event is stamped at most ``future_skew_ms`` after its arrival (the gate refuses the rest), but
events of different topics may be read out of their arrival order (Kafka orders one topic-partition
only); the wall-clock timer ticks at arbitrary times but only when every event that arrived before the
tick has been decided (the runner calls it only when the partition is caught up)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import OrderAttempt, Payment, SaleConfig
from streams.flash_sale.inventory import Inventory, check_invariant
from streams.flash_sale.risk import RiskConfig

T0 = 1_700_000_000_000
GRACE, SKEW, TTL_S = 3_000, 2_000, 2
LOOSE = RiskConfig(max_attempts=1000, duplicate_window_ms=0)


@st.composite
def scenario(draw: st.DrawFn) -> list[tuple[int, int, object]]:
    """(arrival ms, tie-break, event or 'tick') items; holds are taken, then payments race the timer."""
    items: list[tuple[int, int, object]] = []
    buyers = draw(st.integers(1, 6))
    for i in range(buyers):
        at = T0 + 1000 + draw(st.integers(0, 3000))
        items.append((at, 0, OrderAttempt(order_id=f"o{i}", room_id="r", sku_id="s", user_id=f"u{i}", ts=at)))
        deadline = at + TTL_S * 1000
        if draw(st.booleans()):  # an in-time payment: stamped at or before the deadline, arriving within the grace
            stamp = draw(st.integers(at, deadline))
            arrival = draw(st.integers(stamp, deadline + GRACE))
            items.append((arrival, 1, Payment(event_id=f"p{i}", order_id=f"o{i}", room_id="r", sku_id="s",
                                              user_id=f"u{i}", action="paid", ts=stamp)))
    for j in range(draw(st.integers(0, 8))):  # other buyers' attempts, stamped up to SKEW ahead of arrival
        arrival = T0 + draw(st.integers(0, 15_000))
        stamp = arrival + draw(st.integers(-3000, SKEW))
        if draw(st.booleans()):  # ... or read BEFORE earlier input of another topic (a backlog, a restart)
            arrival -= draw(st.integers(0, 8000))
        items.append((arrival, 2, OrderAttempt(order_id=f"x{j}", room_id="r", sku_id="s", user_id=f"x{j}",
                                               ts=stamp)))
    for _ in range(draw(st.integers(0, 10))):
        items.append((T0 + draw(st.integers(0, 20_000)), 3, "tick"))  # after the arrivals of its moment
    items.sort(key=lambda item: (item[0], item[1]))
    return items


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_an_in_time_payment_always_pays(items: list[tuple[int, int, object]]) -> None:
    inv = Inventory(LOOSE, grace_ms=GRACE)
    inv.handle(SaleConfig(event_id="open", room_id="r", sku_id="s", action="open", stock=100, price_cents=100,
                          starts_at=T0, ends_at=T0 + 3_600_000, per_user_limit=5, reservation_ttl_s=TTL_S, ts=T0))
    results = []
    for arrival, _, item in items:
        if item == "tick":
            inv.tick(arrival)  # caught up: everything that arrived before this moment was decided
        else:
            inv.handle(item)  # type: ignore[arg-type]
        check_invariant(inv)
        results += inv.take_outputs()[0].results
    paid_for = {p.order_id for _, _, p in items if isinstance(p, Payment)}
    answers = {r.order_id: r for r in results if r.order_id in paid_for and r.status in ("paid", "payment_refused")}
    accepted = {r.order_id for r in results if r.status == "accepted"}
    for order_id in paid_for & accepted:
        assert answers[order_id].status == "paid", (order_id, answers[order_id])
