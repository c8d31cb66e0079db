"""Writing events into the raw tables, and small typed queries over them.

Inserts are column-oriented and pass the column types along, so clickhouse-connect neither asks
the server to DESCRIBE the table nor inspects rows: one round trip per batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas.base import Event
from schemas.clickhouse import TABLES_BY_NAME, TableSpec, spec_for
from warehouse.migrate import render

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: Raw table -> SQL expression of its natural id (what ReplacingMergeTree deduplicates on).
NATURAL_ID: dict[str, str] = {
    "comments": "event_id",
    "likes": "event_id",
    "presence": "event_id",
    "sale_config": "event_id",
    "orders": "order_id",
    "payments": "event_id",
    "order_results": "(order_id, status)",
    "stock_updates": "(room_id, sku_id, ts, available, reserved, sold, total, price_cents)",
    "scored_comments": "event_id",
    "room_counters": "(room_id, window_start)",
    "alerts": "alert_id",
    "dead_letters": "(source_topic, partition, offset, cityHash64(payload))",
    "impressions": "event_id",
    "product_clicks": "event_id",
    "follows": "event_id",
    "shares": "event_id",
    "host_actions": "event_id",
    "room_benchmarks": "(room_id, ts)",
}


def _database(client: Client, database: str | None) -> str:
    name = database or client.database
    if not name:
        raise ValueError("no database given and the client has no default database")
    return str(name)


def insert_events(
    client: Client, event_type: str | type[Event], events: Sequence[Event], *, database: str | None = None
) -> int:
    """Insert ``events`` (all of ``event_type``: tag, table name or class) into their raw table in one
    batch; returns the rows sent.  ``database`` defaults to the client's."""
    if not events:
        return 0
    spec = spec_for(event_type)
    return insert_columns(client, spec, spec.to_columns(events), database=database)


def insert_columns(
    client: Client, spec: TableSpec, columns: Sequence[Sequence[object]], *, database: str | None = None
) -> int:
    """Insert pre-built column data (see :meth:`TableSpec.to_columns`) into ``spec``'s table."""
    rows = len(columns[0]) if columns else 0
    if rows == 0:
        return 0
    client.insert(
        spec.table,
        columns,
        column_names=spec.column_names,
        column_type_names=spec.column_types,
        database=_database(client, database),
        column_oriented=True,
    )
    return rows


def count_distinct_ids(
    client: Client, table: str, *, room: str | None = None, database: str | None = None
) -> int:
    """Rows of ``table`` after deduplication on its natural id, whether or not merges have run."""
    if table not in NATURAL_ID:
        raise KeyError(f"unknown raw table {table!r}")
    db = render("{db}", _database(client, database))
    where = "WHERE room_id = {room:String}" if room is not None and table != "dead_letters" else ""
    result = client.query(
        f"SELECT uniqExact({NATURAL_ID[table]}) FROM {db}.{table} {where}", parameters={"room": room}
    )
    return int(result.result_rows[0][0])


def count_rows(client: Client, table: str, *, final: bool = False, database: str | None = None) -> int:
    """Rows of ``table`` as stored (``final=False``: duplicates not yet merged away count) or FINAL."""
    if table not in TABLES_BY_NAME:
        raise KeyError(f"unknown raw table {table!r}")
    db = render("{db}", _database(client, database))
    result = client.query(f"SELECT count() FROM {db}.{table}{' FINAL' if final else ''}")
    return int(result.result_rows[0][0])


def table_columns(client: Client, table: str, *, database: str | None = None) -> list[tuple[str, str]]:
    """(name, type) of each column of ``table`` as the engine reports it (DESCRIBE TABLE)."""
    db = render("{db}", _database(client, database))
    rows = client.query(f"DESCRIBE TABLE {db}.`{table}`").result_rows
    return [(str(r[0]), normalize_type(str(r[1]))) for r in rows]


def normalize_type(type_name: str) -> str:
    """One spelling of a type: DESCRIBE breaks long named tuples over lines, our mapping does not."""
    out = re.sub(r"\(\s+", "(", type_name)
    out = re.sub(r"\s+\)", ")", out)
    return re.sub(r",\s+", ", ", out)


def drop_database(client: Client, database: str) -> None:
    client.command(f"DROP DATABASE IF EXISTS {render('{db}', database)} SYNC")
