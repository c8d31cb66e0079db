"""Input ranges and output ranges agree (issue 14, failure 9).

The attack: a sale priced 10^12 cents, two units bought; the RoomCounters snapshot then failed the
gateway's validation and the room's dashboard froze.  Now an input that large is refused with a
clear error, the largest valid inputs summed over the documented envelope fit every output field,
beyond the envelope the counters saturate instead of producing an invalid snapshot, and every int
field's range fits its ClickHouse column.
"""

from __future__ import annotations

import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, OrderResult, RoomCounters, SaleConfig, ValidationError, decode, encode, validate
from schemas.base import (
    ENVELOPE_EVENTS,
    ENVELOPE_ORDER_ATTEMPTS,
    ENVELOPE_SALE_CONFIGS,
    MAX_LIKE_COUNT,
    MAX_PRICE_CENTS,
    MAX_QUANTITY,
    MAX_SAFE_INT,
    MAX_STOCK_UNITS,
)
from schemas.clickhouse import INT_RANGES, TABLES, int_bounds
from schemas.events import SkuStock
from streams.counters.core import PartitionCounters

T0 = 1_767_225_600_000
WALL = T0 + 3_600_000


def _int_fields() -> list[tuple[str, str, mi.IntType]]:
    out = []
    for tag, cls in EVENT_TYPES.items():
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        for f in info.fields:
            t = f.type.type if isinstance(f.type, mi.Metadata) else f.type
            if isinstance(t, mi.UnionType):
                t = next(x for x in t.types if not isinstance(x, mi.NoneType))
                t = t.type if isinstance(t, mi.Metadata) else t
            if isinstance(t, mi.IntType):
                out.append((tag, f.name, t))
    return out


def test_the_envelope_fits_every_output() -> None:
    assert ENVELOPE_ORDER_ATTEMPTS * MAX_QUANTITY * MAX_PRICE_CENTS <= MAX_SAFE_INT  # GMV totals
    assert ENVELOPE_EVENTS * MAX_LIKE_COUNT <= MAX_SAFE_INT  # likes_total
    assert ENVELOPE_SALE_CONFIGS * MAX_STOCK_UNITS <= MAX_SAFE_INT  # stock total of a SKU
    assert ENVELOPE_EVENTS <= MAX_SAFE_INT  # every other count counts events


def test_every_int_field_is_bounded_by_what_javascript_and_clickhouse_hold() -> None:
    for tag, name, t in _int_fields():
        lower, upper = int_bounds(t)
        assert lower is not None and upper is not None, (tag, name)
        assert upper <= MAX_SAFE_INT, (tag, name, upper)
        ctype = dict(TABLES[tag].columns)[name].removeprefix("Nullable(").rstrip(")")
        if ctype.startswith("DateTime64"):
            continue
        low, high = INT_RANGES[ctype]
        assert low <= lower and upper <= high, (tag, name, ctype)


@pytest.mark.parametrize("price", [10**12, MAX_PRICE_CENTS + 1])
def test_the_attack_price_is_refused_with_a_clear_error(price: int) -> None:
    cfg = SaleConfig(event_id="c1", room_id="r1", sku_id="s1", action="open", stock=10, price_cents=price,
                     starts_at=T0, ends_at=T0 + 60_000, ts=T0)
    with pytest.raises(ValidationError) as err:
        decode(SaleConfig, encode(cfg), now_ms=WALL)
    assert err.value.path == "$.price_cents" and str(MAX_PRICE_CENTS) in err.value.reason


def _result(i: int, status: str, quantity: int, price: int) -> OrderResult:
    return OrderResult(order_id=f"o{i}", room_id="r1", sku_id="s1", user_id=f"u{i}", status=status,  # type: ignore[arg-type]
                       quantity=quantity, price_cents=price, attempt_ts=T0 + i, ts=T0 + i)


@settings(max_examples=40, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.sampled_from([1, MAX_QUANTITY - 1, MAX_QUANTITY]),
                  st.sampled_from([0, 1, MAX_PRICE_CENTS - 1, MAX_PRICE_CENTS])),
        min_size=1, max_size=30,
    ),
)
def test_largest_valid_orders_give_snapshots_that_validate(orders: list[tuple[int, int]]) -> None:
    """Edge-valued accepted and paid orders through the real counters core: every snapshot passes
    the same validation the gateway applies, and its money is exact."""
    counters = PartitionCounters()
    for i, (quantity, price) in enumerate(orders):
        decode(OrderResult, encode(_result(i, "accepted", quantity, price)), now_ms=WALL)  # a valid input
        counters.apply(_result(i, "accepted", quantity, price), WALL)
        counters.apply(_result(i, "paid", quantity, price), WALL)
    snapshots = counters.emit(WALL + 600_000)
    assert snapshots
    for snap in snapshots:
        validate(snap)
    expected = sum(q * p for q, p in orders)
    assert snapshots[-1].gmv_reserved_cents_total == expected == snapshots[-1].gmv_paid_cents_total


@given(value=st.integers(min_value=0, max_value=2**64 - 1))
def test_counters_beyond_the_envelope_saturate_and_still_validate(value: int) -> None:
    snap = RoomCounters(room_id="r1", window_start=T0, window_end=T0 + 1000, ts=T0 + 1000,
                        gmv_reserved_cents_total=value, likes_total=value, units_total=value,
                        stock={"s1": SkuStock(available=value, reserved=0, sold=0, total=value)})
    again = validate(snap)
    assert again.gmv_reserved_cents_total == min(value, MAX_SAFE_INT)
    assert again.likes_total == again.units_total == min(value, MAX_SAFE_INT)
    assert again.stock["s1"].total == min(value, MAX_SAFE_INT)


def test_a_decoded_snapshot_beyond_the_range_is_still_refused() -> None:
    """Saturation is what our producers do; the wire contract itself stays strict."""
    raw = encode(RoomCounters(room_id="r1", window_start=T0, window_end=T0 + 1000, ts=T0 + 1000)).replace(
        b'"likes_total":0', b'"likes_total":%d' % (MAX_SAFE_INT + 1)
    )
    with pytest.raises(ValidationError):
        decode(RoomCounters, raw, now_ms=WALL)

