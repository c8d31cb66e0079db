"""ClickHouse columns of every stored event type, derived from the msgspec Structs in :mod:`schemas.events`.

One definition: the raw tables' DDL (``warehouse/migrations/*.sql``) is checked against
:data:`TABLES` by a test that compares ``DESCRIBE TABLE`` with these columns, so a field added to an
event without a migration (or the other way round) fails CI instead of failing the sink at 3 am.

Type choices, and why:

* timestamps (an ``int`` constrained to the ``TimestampMs`` range) -> ``DateTime64(3, 'UTC')``:
  the same 8 bytes as a ``UInt64`` of milliseconds, but ``toStartOfMinute``, ``toDate`` partitions
  and readable results work without conversions in every query, and the epoch-ms integer goes in
  unchanged (clickhouse-connect writes ints as raw ticks), so the sink pays nothing for it.
* ``Literal`` -> ``LowCardinality(String)`` rather than ``Enum8``: a literal value added to the
  Python schema must not make inserts fail before a migration lands; the dictionary encoding
  gives Enum-like size and speed anyway.
* ids -> ``String``, except the few that have few distinct values and are grouped or filtered on
  (room, SKU, alert kind, source topic, error class) -> ``LowCardinality(String)``.
* ``X | None`` -> ``Nullable(X)`` (``LowCardinality(Nullable(String))`` for low-cardinality ones).
* non-negative ints -> ``UInt8`` when their declared maximum fits (schema version, quantity),
  else ``UInt64``; ints that may be negative (Kafka partition/offset -1) -> ``Int64``.  Every int
  field must declare both bounds, and they must fit the column: :func:`column_type` raises
  otherwise.  Sums the warehouse computes (GMV per minute) stay within the envelope of
  :mod:`schemas.base`, far below UInt64's limit.
* ``float`` -> ``Float64``; ``bytes`` -> ``String`` (ClickHouse strings are byte strings).
* ``dict[str, Struct]`` (the per-SKU stock of room counters) -> ``Map(String, Tuple(<named fields>))``
  so that a report can read ``stock['sku-1'].sold`` without parsing JSON.

``python -m schemas.clickhouse`` prints the column lists as DDL, to start a migration from.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from schemas.base import MAX_TS_MS, MIN_TS_MS, Event
from schemas.events import EVENT_TYPES

#: String fields stored as LowCardinality(String): few distinct values, used in GROUP BY / WHERE.
LOW_CARDINALITY_FIELDS = frozenset({"room_id", "sku_id", "kind", "source_topic", "error"})

DATETIME = "DateTime64(3, 'UTC')"

#: Event tag -> raw table name.
TABLE_OF_TAG: dict[str, str] = {
    "comment": "comments",
    "like": "likes",
    "presence": "presence",
    "sale_config": "sale_config",
    "order": "orders",
    "payment": "payments",
    "order_result": "order_results",
    "stock": "stock_updates",
    "scored_comment": "scored_comments",
    "room_counters": "room_counters",
    "alert": "alerts",
    "dead_letter": "dead_letters",
    "impression": "impressions",
    "product_click": "product_clicks",
    "follow": "follows",
    "share": "shares",
    "host_action": "host_actions",
    "room_benchmark": "room_benchmarks",
}


class UnsupportedFieldType(TypeError):
    """A field type has no ClickHouse mapping yet: extend :func:`column_type` (and add a migration)."""


def _strip_meta(t: mi.Type) -> mi.Type:
    return t.type if isinstance(t, mi.Metadata) else t


def _is_timestamp(t: mi.Type) -> bool:
    return isinstance(t, mi.IntType) and t.ge == MIN_TS_MS and t.le == MAX_TS_MS


#: [min, max] of each integer column type the mapping uses.
INT_RANGES: dict[str, tuple[int, int]] = {
    "UInt8": (0, 2**8 - 1),
    "UInt64": (0, 2**64 - 1),
    "Int64": (-(2**63), 2**63 - 1),
}


def int_bounds(t: mi.IntType) -> tuple[int | None, int | None]:
    """The inclusive [lower, upper] a msgspec int type allows (None: unbounded on that side)."""
    lower = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
    upper = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
    return lower, upper


def _int_type(field_name: str, t: mi.IntType) -> str:
    """The column type of an int field; raises when a valid value would not fit it, so that an input
    range widened in :mod:`schemas.events` cannot silently overflow (or fail) in ClickHouse."""
    lower, upper = int_bounds(t)
    if lower is None or lower < 0:
        ctype = "Int64"
    elif upper is not None and upper <= INT_RANGES["UInt8"][1]:
        ctype = "UInt8"
    else:
        ctype = "UInt64"
    low, high = INT_RANGES[ctype]
    if lower is None or upper is None or lower < low or upper > high:
        raise UnsupportedFieldType(f"{field_name}: range [{lower}, {upper}] does not fit {ctype}; bound it")
    return ctype


def column_type(field_name: str, t: mi.Type) -> str:
    """The ClickHouse type of one Struct field, from its msgspec type info."""
    t = _strip_meta(t)
    if isinstance(t, mi.UnionType):
        inner = [_strip_meta(x) for x in t.types if not isinstance(x, mi.NoneType)]
        if len(inner) != 1 or len(inner) == len(t.types):
            raise UnsupportedFieldType(f"{field_name}: only `X | None` unions are mapped, got {t}")
        base = column_type(field_name, inner[0])
        if base.startswith("LowCardinality("):
            return f"LowCardinality(Nullable({base[len('LowCardinality('):-1]}))"
        return f"Nullable({base})"
    if isinstance(t, mi.IntType):
        return DATETIME if _is_timestamp(t) else _int_type(field_name, t)
    if isinstance(t, mi.FloatType):
        return "Float64"
    if isinstance(t, mi.BoolType):
        return "Bool"
    if isinstance(t, mi.LiteralType):
        return "LowCardinality(String)"
    if isinstance(t, mi.StrType):
        return "LowCardinality(String)" if field_name in LOW_CARDINALITY_FIELDS else "String"
    if isinstance(t, mi.BytesType):
        return "String"
    if isinstance(t, mi.DictType) and isinstance(_strip_meta(t.key_type), mi.StrType):
        value = _strip_meta(t.value_type)
        if isinstance(value, mi.StructType):
            parts = ", ".join(f"{f.name} {column_type(f.name, f.type)}" for f in value.fields)
            return f"Map(String, Tuple({parts}))"
        return f"Map(String, {column_type(field_name, value)})"
    raise UnsupportedFieldType(f"{field_name}: no ClickHouse mapping for {t}")


def _struct_to_tuple(value: msgspec.Struct) -> tuple[Any, ...]:
    return msgspec.structs.astuple(value)


def _converter(t: mi.Type) -> Callable[[Any], Any] | None:
    """How a field's Python value becomes what clickhouse-connect writes; None = as is (the fast path)."""
    t = _strip_meta(t)
    if isinstance(t, mi.UnionType):
        inner = [_strip_meta(x) for x in t.types if not isinstance(x, mi.NoneType)]
        conv = _converter(inner[0])
        if conv is None:
            return None
        return lambda v: None if v is None else conv(v)
    if isinstance(t, mi.DictType) and isinstance(_strip_meta(t.value_type), mi.StructType):
        return lambda d: {k: _struct_to_tuple(v) for k, v in d.items()}
    return None


@dataclass(frozen=True)
class TableSpec:
    """The raw table of one event type: its name, (column, type) list and row/column conversion."""

    tag: str
    table: str
    event: type[Event]
    columns: tuple[tuple[str, str], ...]
    to_row: Callable[[Event], tuple[Any, ...]]
    #: Per column: a C-level attribute getter and an optional value converter (None = as is).
    extractors: tuple[tuple[Callable[[Event], Any], Callable[[Any], Any] | None], ...]

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def column_types(self) -> list[str]:
        return [ctype for _, ctype in self.columns]

    def to_columns(self, events: Sequence[Event]) -> list[list[Any]]:
        """Column-oriented data of ``events`` (one list per column), what a batched insert wants.

        Built column by column with ``map(attrgetter)``: about twice as fast as transposing row
        tuples with ``zip(*rows)`` (~1.5 µs an event for a comment on this machine).
        """
        columns = []
        for getter, convert in self.extractors:
            column = list(map(getter, events))
            columns.append(column if convert is None else list(map(convert, column)))
        return columns


def _row_function(event: type[Event], fields: Sequence[mi.Field]) -> Callable[[Event], tuple[Any, ...]]:
    """A row builder in column order. Events whose fields all go in as they are use one C-level
    ``attrgetter`` call per event (the common case: comments, likes, orders...)."""
    names = [f.name for f in fields]
    getter = operator.attrgetter(*names)
    converters = [(i, c) for i, f in enumerate(fields) if (c := _converter(f.type)) is not None]
    if len(names) == 1:  # attrgetter of one name returns the value, not a tuple
        return lambda e: (getter(e),)
    if not converters:
        return getter

    def to_row(e: Event) -> tuple[Any, ...]:
        row = list(getter(e))
        for i, conv in converters:
            row[i] = conv(row[i])
        return tuple(row)

    return to_row


def table_spec(tag: str) -> TableSpec:
    """Build the TableSpec of one event type from its Struct."""
    event = EVENT_TYPES[tag]
    info = mi.type_info(event)
    assert isinstance(info, mi.StructType)
    fields = info.fields
    columns = tuple((f.name, column_type(f.name, f.type)) for f in fields)
    extractors = tuple((operator.attrgetter(f.name), _converter(f.type)) for f in fields)
    return TableSpec(tag, TABLE_OF_TAG[tag], event, columns, _row_function(event, fields), extractors)


#: Event tag -> its raw table, for every stored event type.
TABLES: dict[str, TableSpec] = {tag: table_spec(tag) for tag in TABLE_OF_TAG}

#: Raw table name -> its spec.
TABLES_BY_NAME: dict[str, TableSpec] = {spec.table: spec for spec in TABLES.values()}


def spec_for(event_type: str | type[Event]) -> TableSpec:
    """Spec by tag (``"comment"``), table name (``"comments"``) or event class (``Comment``)."""
    if isinstance(event_type, str):
        spec = TABLES.get(event_type) or TABLES_BY_NAME.get(event_type)
        if spec is None:
            raise KeyError(f"no ClickHouse table for event type {event_type!r}")
        return spec
    return TABLES[event_type.__struct_config__.tag]  # type: ignore[index]


def to_row(event: Event) -> tuple[Any, ...]:
    """The row of one event, in its table's column order."""
    return spec_for(type(event)).to_row(event)


def ddl_columns(tag: str) -> str:
    """The column list of a raw table as DDL text (to paste into a new migration)."""
    return ",\n".join(f"    {name} {ctype}" for name, ctype in TABLES[tag].columns)


if __name__ == "__main__":
    for tag, spec in TABLES.items():
        sys.stdout.write(f"-- {tag}\nCREATE TABLE {spec.table} (\n{ddl_columns(tag)}\n)\n\n")
