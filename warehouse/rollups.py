"""Recompute the per-minute rollup (``room_minute``) from the deduplicated raw tables.

Why it exists: materialized views see inserts, not rows.  A replayed batch (at-least-once
delivery) is counted twice by the views although ReplacingMergeTree collapses it in the raw table,
and after a ``kill -9`` mid-insert the raw table can hold a batch that the views missed.  The raw
tables are the truth; :func:`rebuild_rollups` makes the rollup agree with them again.

The SELECTs below mirror the views of migration 0002 column for column, but read ``FINAL`` (one
row per natural key).  Run it where nothing inserts into the same room at the same time (the sink
does it itself between batches): rows inserted during a rebuild may be counted twice or missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from warehouse.migrate import render

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ROLLUP_TABLE = "room_minute"

#: (source table, time column, aggregate columns "expression AS name") of each view of room_minute.
ROLLUP_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("comments", "ts", ("toUInt64(count()) AS comments",)),
    ("likes", "ts", ("toUInt64(sum(count)) AS likes",)),
    ("orders", "ts", ("toUInt64(count()) AS order_attempts",)),
    (
        "order_results",
        "ts",
        (
            "toUInt64(countIf(status = 'accepted')) AS orders_accepted",
            "toUInt64(sumIf(quantity, status = 'accepted')) AS units_accepted",
            "toUInt64(sumIf(quantity * price_cents, status = 'accepted')) AS gmv_reserved_cents",
            "toUInt64(countIf(status = 'paid')) AS orders_paid",
            "toUInt64(sumIf(quantity * price_cents, status = 'paid')) AS gmv_paid_cents",
        ),
    ),
    (
        "scored_comments",
        "ts",
        (
            "toUInt64(count()) AS scored_comments",
            "toUInt64(countIf(label = 'negative')) AS negative_comments",
            "toFloat64(sum(score)) AS sentiment_sum",
        ),
    ),
    ("room_counters", "window_start", ("toUInt64(max(online)) AS online_peak",)),
)

#: Rollup columns: (name, how a reader combines the partial rows of one room-minute, its zero value).
ROLLUP_COLUMNS: tuple[tuple[str, str, str], ...] = tuple(
    (expr.rsplit(" AS ", 1)[1], "max" if "(max(" in expr else "sum", expr.split("(", 1)[0] + "(0)")
    for _, _, exprs in ROLLUP_SOURCES
    for expr in exprs
)


def rebuild_rollups(client: Client, database: str, room: str | None = None) -> None:
    """Replace ``room_minute`` (all rooms, or only ``room``) with values computed from the raw tables."""
    db = render("{db}", database)
    params = {"room": room}
    where = "WHERE room_id = {room:String}" if room is not None else ""
    if room is None:
        client.command(f"TRUNCATE TABLE {db}.{ROLLUP_TABLE}")
    else:
        client.command(
            f"ALTER TABLE {db}.{ROLLUP_TABLE} DELETE {where} SETTINGS mutations_sync = 2", parameters=params
        )
    for source, time_column, exprs in ROLLUP_SOURCES:
        names = ", ".join(expr.rsplit(" AS ", 1)[1] for expr in exprs)
        client.command(
            f"INSERT INTO {db}.{ROLLUP_TABLE} (room_id, minute, {names}) "
            f"SELECT room_id, toStartOfMinute({time_column}) AS minute, {', '.join(exprs)} "
            f"FROM {db}.{source} FINAL {where} GROUP BY room_id, minute",
            parameters=params,
        )


def rollup_query(database: str, room: str | None = None) -> str:
    """SQL that reads ``room_minute`` folded to one row per (room_id, minute), in column order of
    :data:`ROLLUP_COLUMNS`; pass ``parameters={"room": room}`` when ``room`` is given."""
    db = render("{db}", database)
    cols = ", ".join(f"{fn}({name}) AS {name}" for name, fn, _ in ROLLUP_COLUMNS)
    where = "WHERE room_id = {room:String}" if room is not None else ""
    return (
        f"SELECT room_id, minute, {cols} FROM {db}.{ROLLUP_TABLE} {where} "
        "GROUP BY room_id, minute ORDER BY room_id, minute"
    )


def raw_rollup_query(database: str, room: str | None = None) -> str:
    """The same result as :func:`rollup_query`, computed by GROUP BY on the deduplicated raw tables
    (slower; for checks and for a report that cannot trust the rollup)."""
    db = render("{db}", database)
    where = "WHERE room_id = {room:String}" if room is not None else ""
    parts = []
    for source, time_column, exprs in ROLLUP_SOURCES:
        own = {expr.rsplit(" AS ", 1)[1]: expr for expr in exprs}
        cols = ", ".join(own.get(name, f"{zero} AS {name}") for name, _, zero in ROLLUP_COLUMNS)
        parts.append(
            f"SELECT room_id, toStartOfMinute({time_column}) AS minute, {cols} "
            f"FROM {db}.{source} FINAL {where} GROUP BY room_id, minute"
        )
    cols = ", ".join(f"{fn}({name}) AS {name}" for name, fn, _ in ROLLUP_COLUMNS)
    return (
        f"SELECT room_id, toDateTime(minute, 'UTC') AS minute, {cols} FROM ({' UNION ALL '.join(parts)}) "
        "GROUP BY room_id, minute ORDER BY room_id, minute"
    )



def rounded(rows: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows with float sums rounded to 6 places: their last bits depend on the order of addition, so
    a rollup and its recomputation compare equal only after this."""
    return [[round(v, 6) if isinstance(v, float) else v for v in row] for row in rows]


def rollup_matches_raw(client: Client, database: str, room: str | None = None) -> tuple[int, bool]:
    """(room-minutes in the rollup, whether they equal the same figures computed from the raw tables)."""
    params = {"room": room} if room is not None else None
    rollup = client.query(rollup_query(database, room), parameters=params).result_rows
    raw = client.query(raw_rollup_query(database, room), parameters=params).result_rows
    return len(rollup), rounded(rollup) == rounded(raw)
