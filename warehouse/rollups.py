"""Recompute the per-minute rollup (``room_minute``) from the deduplicated raw tables.

Why it exists: materialized views see inserts, not rows.  A replayed batch (at-least-once
delivery) is counted twice by the views although ReplacingMergeTree collapses it in the raw table,
and after a ``kill -9`` mid-insert the raw table can hold a batch that the views missed.  The raw
tables are the truth; :func:`rebuild_rollups` makes the rollup agree with them again.

The SELECTs below mirror the views of migrations 0002 and 0004 column for column, but read
``FINAL`` (one row per natural key) where a figure is a plain sum.  Run it where nothing inserts
into the same room at the same time (the sink does it itself between batches): rows inserted
during a rebuild may be counted twice or missed (deduplicated figures excepted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warehouse.migrate import render

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ROLLUP_TABLE = "room_minute"


@dataclass(frozen=True)
class RollupColumn:
    """One figure of ``room_minute``: where it comes from and how it is written, read and recomputed.

    ``write`` is the aggregate the view (and a rebuild) inserts into the stored column ``stored``;
    ``read`` folds the partial rows of one room-minute into the figure; ``raw`` computes the same
    figure in one GROUP BY over the raw table (for checks).  Summed columns count every inserted row,
    so a replayed batch counts twice until a rebuild; DEDUPLICATED ones (scored comments, issue 11)
    keep the set of comment ids per minute (``uniqExact`` state, and the score per id hash in a
    ``maxMap`` state), so a comment inserted twice counts once whenever it arrives: the Faust
    sentiment agent is at-least-once, and its replays would otherwise inflate the rollup.
    """

    name: str
    source: str
    time_column: str
    write: str
    stored: str
    read: str
    raw: str
    zero: str = "toUInt64(0)"

    @property
    def combine(self) -> str:
        """How partial rows fold: ``sum``, ``max`` or ``merge`` (an aggregate state, order-free)."""
        return self.read.split("(", 1)[0] if self.read.startswith(("sum(", "max(")) else "merge"


def _summed(name: str, source: str, expr: str, time_column: str = "ts", fn: str = "sum") -> RollupColumn:
    return RollupColumn(name, source, time_column, expr, name, f"{fn}({name})", expr)


#: Every figure of room_minute, in column order; each raw table feeds one view (migrations 0002, 0004).
COLUMNS: tuple[RollupColumn, ...] = (
    _summed("comments", "comments", "toUInt64(count())"),
    _summed("likes", "likes", "toUInt64(sum(count))"),
    _summed("order_attempts", "orders", "toUInt64(count())"),
    _summed("orders_accepted", "order_results", "toUInt64(countIf(status = 'accepted'))"),
    _summed("units_accepted", "order_results", "toUInt64(sumIf(quantity, status = 'accepted'))"),
    _summed("gmv_reserved_cents", "order_results", "toUInt64(sumIf(quantity * price_cents, status = 'accepted'))"),
    _summed("orders_paid", "order_results", "toUInt64(countIf(status = 'paid'))"),
    _summed("gmv_paid_cents", "order_results", "toUInt64(sumIf(quantity * price_cents, status = 'paid'))"),
    RollupColumn(
        "scored_comments", "scored_comments", "ts", "uniqExactState(event_id)", "scored_ids",
        "uniqExactMerge(scored_ids)", "toUInt64(uniqExact(event_id))",
    ),
    RollupColumn(
        "negative_comments", "scored_comments", "ts", "uniqExactStateIf(event_id, label = 'negative')",
        "negative_ids", "uniqExactMerge(negative_ids)", "toUInt64(uniqExactIf(event_id, label = 'negative'))",
    ),
    RollupColumn(
        "sentiment_sum", "scored_comments", "ts", "maxMapState(map(sipHash64(event_id), score))",
        "sentiment_by_id", "arraySum(mapValues(maxMapMerge(sentiment_by_id)))",
        "arraySum(mapValues(maxMap(map(sipHash64(event_id), score))))", "toFloat64(0)",
    ),
    _summed("online_peak", "room_counters", "toUInt64(max(online))", "window_start", "max"),
)

#: Raw tables whose figures are order-free sets: read without FINAL, so that the recomputation sees
#: every copy of a replayed row, as the view did (FINAL would keep one copy, and a re-scored
#: comment's score may differ from the first in the last digits).
DEDUPLICATED_SOURCES = frozenset(c.source for c in COLUMNS if c.combine == "merge")

#: (source table, time column, aggregate columns "expression AS stored column") of each view.
ROLLUP_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (source, time_column, tuple(f"{c.write} AS {c.stored}" for c in COLUMNS if c.source == source))
    for source, time_column in dict.fromkeys((c.source, c.time_column) for c in COLUMNS)
)

#: Rollup figures: (name, how a reader folds partial rows: sum / max / merge, its zero value).
ROLLUP_COLUMNS: tuple[tuple[str, str, str], ...] = tuple((c.name, c.combine, c.zero) for c in COLUMNS)


def _final(source: str) -> str:
    return "" if source in DEDUPLICATED_SOURCES else " FINAL"


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
            f"FROM {db}.{source}{_final(source)} {where} GROUP BY room_id, minute",
            parameters=params,
        )


def rollup_query(database: str, room: str | None = None) -> str:
    """SQL that reads ``room_minute`` folded to one row per (room_id, minute), in column order of
    :data:`ROLLUP_COLUMNS`; pass ``parameters={"room": room}`` when ``room`` is given."""
    db = render("{db}", database)
    cols = ", ".join(f"{c.read} AS {c.name}" for c in COLUMNS)
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
    for source, time_column, _ in ROLLUP_SOURCES:
        cols = ", ".join(f"{c.raw if c.source == source else c.zero} AS {c.name}" for c in COLUMNS)
        parts.append(
            f"SELECT room_id, toStartOfMinute({time_column}) AS minute, {cols} "
            f"FROM {db}.{source}{_final(source)} {where} GROUP BY room_id, minute"
        )
    # each figure comes from one source (the others give its zero), so a plain fold combines them
    cols = ", ".join(f"{'max' if c.combine == 'max' else 'sum'}({c.name}) AS {c.name}" for c in COLUMNS)
    return (
        f"SELECT room_id, toDateTime(minute, 'UTC') AS minute, {cols} FROM ({' UNION ALL '.join(parts)}) "
        "GROUP BY room_id, minute ORDER BY room_id, minute"
    )



def rounded(rows: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows with float sums rounded to 6 places: their last bits depend on the order of addition, so
    a rollup and its recomputation compare equal only after this."""
    return [[round(v, 6) if isinstance(v, float) else v for v in row] for row in rows]


@dataclass(frozen=True)
class Disagreement:
    """One figure of one room-minute on which the rollup and the raw tables differ."""

    room_id: str
    minute: object
    figure: str
    rollup: object
    raw: object

    def __str__(self) -> str:
        minute = self.minute.strftime("%Y-%m-%d %H:%M") if hasattr(self.minute, "strftime") else self.minute
        return f"{self.room_id} {minute} {self.figure}: rollup {self.rollup}, raw tables {self.raw}"


def disagreements(rollup: Sequence[Sequence[object]], raw: Sequence[Sequence[object]]) -> list[Disagreement]:
    """Every figure on which two results of the :func:`rollup_query` shape differ, by room and minute.
    Pure.  A room-minute missing on one side counts as all zeros there (a truncated rollup and an
    empty minute look the same to a reader); floats compare after :func:`rounded`."""
    names = [c.name for c in COLUMNS]
    ours = {(row[0], row[1]): row[2:] for row in rounded(rollup)}
    truth = {(row[0], row[1]): row[2:] for row in rounded(raw)}
    zeros = [0] * len(names)
    found = []
    for key in sorted(ours.keys() | truth.keys(), key=lambda k: (str(k[0]), str(k[1]))):
        a, b = ours.get(key, zeros), truth.get(key, zeros)
        found += [
            Disagreement(str(key[0]), key[1], name, x, y)
            for name, x, y in zip(names, a, b, strict=True) if x != y
        ]
    return found


def check_rollup(client: Client, database: str, room: str | None = None) -> tuple[int, list[Disagreement]]:
    """(room-minutes in the rollup, the figures on which it disagrees with the raw tables): the
    check, without repairing anything."""
    params = {"room": room} if room is not None else None
    ours = client.query(rollup_query(database, room), parameters=params).result_rows
    truth = client.query(raw_rollup_query(database, room), parameters=params).result_rows
    return len(ours), disagreements(ours, truth)


def rollup_matches_raw(client: Client, database: str, room: str | None = None) -> tuple[int, bool]:
    """(room-minutes in the rollup, whether they equal the same figures computed from the raw tables)."""
    minutes, found = check_rollup(client, database, room)
    return minutes, not found
