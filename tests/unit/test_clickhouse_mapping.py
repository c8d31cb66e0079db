"""schemas.clickhouse: every stored event type maps every field, with the documented types, fast and exactly."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, ValidationError, validate
from schemas.base import MAX_TS_MS, MIN_TS_MS, Event
from schemas.clickhouse import DATETIME, TABLES, column_type, spec_for, to_row
from schemas.events import Comment, RoomCounters, SkuStock


def test_every_event_type_has_a_table_with_every_field_in_order() -> None:
    assert set(TABLES) == set(EVENT_TYPES)
    for tag, event in EVENT_TYPES.items():
        assert TABLES[tag].column_names == list(event.__struct_fields__), tag


def test_table_names_are_unique() -> None:
    names = [spec.table for spec in TABLES.values()]
    assert len(names) == len(set(names))


def test_timestamps_are_datetime64_ms_utc_and_optional_ones_nullable() -> None:
    for tag, spec in TABLES.items():
        for field in mi.type_info(spec.event).fields:  # type: ignore[attr-defined]
            t = field.type.type if isinstance(field.type, mi.Metadata) else field.type
            ctype = dict(spec.columns)[field.name]
            if isinstance(t, mi.IntType) and (t.ge, t.le) == (MIN_TS_MS, MAX_TS_MS):
                assert ctype == DATETIME, (tag, field.name)
            if isinstance(t, mi.UnionType):
                assert "Nullable(" in ctype, (tag, field.name)
            else:
                assert "Nullable(" not in ctype, (tag, field.name)


@pytest.mark.parametrize(
    ("tag", "field", "expected"),
    [
        ("comment", "v", "UInt8"),
        ("comment", "event_id", "String"),
        ("comment", "room_id", "LowCardinality(String)"),
        ("like", "user_id", "Nullable(String)"),
        ("like", "count", "UInt64"),
        ("presence", "action", "LowCardinality(String)"),
        ("sale_config", "starts_at", f"Nullable({DATETIME})"),
        ("sale_config", "title", "Nullable(String)"),
        ("order_result", "reason", "LowCardinality(Nullable(String))"),
        ("order_result", "quantity", "UInt8"),
        ("order_result", "price_cents", "UInt64"),
        ("scored_comment", "score", "Float64"),
        ("room_counters", "sentiment_avg", "Nullable(Float64)"),
        (
            "room_counters",
            "stock",
            "Map(String, Tuple(available UInt64, reserved UInt64, sold UInt64, total UInt64))",
        ),
        ("dead_letter", "partition", "Int64"),
        ("presence", "source", "LowCardinality(Nullable(String))"),
        ("presence", "is_follower", "Nullable(Bool)"),
        ("impression", "placement", "LowCardinality(String)"),
        ("host_action", "host_id", "String"),
        ("room_benchmark", "ctr", "Nullable(Float64)"),
        ("dead_letter", "key", "Nullable(String)"),
        ("dead_letter", "payload", "String"),
    ],
)
def test_documented_type_choices(tag: str, field: str, expected: str) -> None:
    assert dict(TABLES[tag].columns)[field] == expected


def test_unmapped_types_are_refused_with_the_field_name() -> None:
    with pytest.raises(TypeError, match="weird"):
        column_type("weird", mi.ListType(mi.IntType(), None, None))
    with pytest.raises(TypeError, match="pair"):
        column_type("pair", mi.UnionType((mi.IntType(), mi.StrType())))


def test_spec_lookup_by_tag_table_and_class() -> None:
    assert spec_for("comment") is spec_for("comments") is spec_for(Comment)
    with pytest.raises(KeyError):
        spec_for("nope")


# --- rows: a strategy for every event type, derived from the same msgspec type info ---------------


def _strategy(t: mi.Type) -> st.SearchStrategy[Any]:
    t = t.type if isinstance(t, mi.Metadata) else t
    if isinstance(t, mi.UnionType):
        inner = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return st.none() | _strategy(inner[0])
    if isinstance(t, mi.IntType):
        return st.integers(t.ge if t.ge is not None else -(2**40), t.le if t.le is not None else 2**40)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.FloatType):
        return st.floats(t.ge if t.ge is not None else -1e9, t.le if t.le is not None else 1e9, allow_nan=False)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.StrType):
        if t.pattern:
            return st.from_regex(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")
        return st.text(min_size=max(t.min_length or 0, 1), max_size=min(t.max_length or 50, 50))
    if isinstance(t, mi.BytesType):
        return st.binary(max_size=64)
    if isinstance(t, mi.DictType):
        return st.dictionaries(st.from_regex(r"\A[a-z0-9-]{1,8}\Z"), _strategy(t.value_type), max_size=3)
    if isinstance(t, mi.StructType):
        return st.fixed_dictionaries({f.name: _strategy(f.type) for f in t.fields})
    raise AssertionError(f"no strategy for {t}")


def _event_strategy(event: type[Event]) -> st.SearchStrategy[Event]:
    info = mi.type_info(event)
    assert isinstance(info, mi.StructType)
    fields = {f.name: _strategy(f.type) for f in info.fields}

    def build(values: dict[str, Any]) -> Event | None:
        try:
            return validate(msgspec.convert(values, event))
        except (msgspec.ValidationError, ValidationError, ValueError):
            return None  # e.g. a sale `open` without stock, or text empty after normalisation

    return st.fixed_dictionaries(fields).map(build).filter(lambda e: e is not None)  # type: ignore[return-value]


any_event = st.sampled_from(sorted(EVENT_TYPES)).flatmap(lambda tag: _event_strategy(EVENT_TYPES[tag]))


def _expected_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: msgspec.structs.astuple(v) for k, v in value.items()}
    return value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(any_event)
def test_row_holds_each_field_value_in_column_order(event: Event) -> None:
    spec = spec_for(type(event))
    row = to_row(event)
    assert len(row) == len(spec.columns)
    for (name, _), value in zip(spec.columns, row, strict=True):
        assert value == _expected_value(getattr(event, name)), name


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    st.sampled_from(sorted(EVENT_TYPES)).flatmap(lambda tag: st.lists(_event_strategy(EVENT_TYPES[tag]), max_size=6))
)
def test_columns_are_the_transpose_of_rows(events: list[Event]) -> None:
    assume(events)
    spec = spec_for(type(events[0]))
    columns = spec.to_columns(events)
    assert [list(col) for col in zip(*columns, strict=True)] == [list(spec.to_row(e)) for e in events]


def test_columns_of_no_events_are_empty_lists_per_column() -> None:
    spec = spec_for("comment")
    assert spec.to_columns([]) == [[] for _ in spec.columns]


def test_nested_stock_becomes_named_tuple_values() -> None:
    rc = RoomCounters(
        room_id="r1",
        window_start=MIN_TS_MS,
        window_end=MIN_TS_MS + 1000,
        ts=MIN_TS_MS + 1000,
        stock={"sku-1": SkuStock(available=1, reserved=2, sold=3, total=6)},
    )
    row = dict(zip(spec_for(RoomCounters).column_names, to_row(rc), strict=True))
    assert row["stock"] == {"sku-1": (1, 2, 3, 6)}
    assert re.fullmatch(r"Map\(String, Tuple\(available UInt64, .*\)\)", dict(spec_for(RoomCounters).columns)["stock"])
