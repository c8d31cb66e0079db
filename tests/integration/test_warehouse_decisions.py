"""The warehouse holds what was decided, counts replays once and stores edge values exactly: on the
real embedded ClickHouse engine (chdb), with the real flash-sale core and the sink's real row mapping.

- issue 14.10: an order re-sent with another quantity; the warehouse keeps the decided one;
- issue 11: a scored comment the sentiment agent re-produced (same id, its score off in the last
  digits) counts once in the per-minute rollup, without a rebuild;
- issue 14.9: the largest and smallest valid value of every integer field goes in and comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, OrderAttempt, RoomCounters, SaleConfig, ScoredComment, validate
from schemas.base import MAX_SAFE_INT, MAX_TS_MS, MIN_TS_MS
from schemas.clickhouse import TABLES
from schemas.events import SkuStock
from streams.flash_sale.inventory import Inventory
from streams.sink.core import SinkBuffer
from tests.strategies import struct_kwargs
from warehouse.migrate import load_migrations, migrate, render, split_statements
from warehouse.reports import ReportQueries, Window
from warehouse.rollups import check_rollup, rollup_query
from warehouse.writer import WarehouseWriter

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000  # 2026-01-01
MINUTE = 60_000


def _rollup(client: Client, db: str) -> dict[tuple[str, int], dict[str, Any]]:
    result = client.query(rollup_query(db))
    return {
        (row[0], int(row[1].timestamp()) * 1000): dict(zip(result.column_names[2:], row[2:], strict=True))
        for row in result.result_rows
    }


# ---- 14.10: the decided attempt ------------------------------------------------------------------


def test_orders_keep_the_attempt_that_was_decided(warehouse_db: tuple[Client, str]) -> None:
    """The attack: order o1 decided with quantity 2, then re-sent with quantity 1 (and a later ts);
    34 such orders showed the re-send under FINAL.  Messages go through the sink's real mapping in
    log order: the raw attempts first, then the flash-sale job's answers, in separate batches."""
    client, db = warehouse_db
    writer = WarehouseWriter(client, db)
    inv = Inventory()
    inv.handle(SaleConfig(event_id="c1", room_id="r1", sku_id="s1", action="open", stock=100, price_cents=990,
                          starts_at=T0, ends_at=T0 + 10 * MINUTE, per_user_limit=10, ts=T0))
    sent = [
        OrderAttempt(order_id=f"o{i}", room_id="r1", sku_id="s1", user_id=f"u{i}", quantity=2, ts=T0 + i)
        for i in range(34)
    ]
    resent = [msgspec.structs.replace(a, quantity=1, ts=a.ts + MINUTE) for a in sent]  # a minute later
    for attempts in (sent, resent):
        buffer = SinkBuffer()
        for attempt in attempts:
            buffer.add("orders", attempt, now_ms=0)
            inv.handle(attempt)
        for result in inv.take_outputs()[0].results:
            buffer.add("order_results", result, now_ms=0)
        writer.write_tables(buffer.drain())

    db_name = render("{db}", db)
    rows = client.query(
        f"SELECT order_id, quantity, toUnixTimestamp64Milli(ts) FROM {db_name}.orders FINAL ORDER BY order_id"
    ).result_rows
    assert sorted(tuple(r) for r in rows) == sorted((a.order_id, 2, a.ts) for a in sent)
    units = client.query(f"SELECT sum(quantity) FROM {db_name}.orders FINAL").result_rows[0][0]
    assert units == 68
    window = Window("r1", T0, T0 + 10 * MINUTE)
    assert ReportQueries(client, db).sku_attempts(window) == [("s1", 34)]


# ---- issue 11: a re-produced scored comment counts once ------------------------------------------


def test_a_replayed_scored_comment_counts_once_in_the_rollup(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    writer = WarehouseWriter(client, db)
    first = [
        ScoredComment(event_id=f"c{i}", room_id="r1", user_id=f"u{i}", text=f"t{i}",
                      label="negative" if i % 3 == 0 else "positive", score=-0.5 if i % 3 == 0 else 0.25,
                      confidence=0.9, ts=T0 + i * 1000)
        for i in range(30)
    ]
    writer.write(first)
    before = _rollup(client, db)
    # the agent restarts and re-produces the last 10 it had scored, one score off in the last digit
    replay = [msgspec.structs.replace(c, score=c.score + 0.001) if i == 0 else c for i, c in enumerate(first[20:])]
    writer.write(replay)
    after = _rollup(client, db)
    key = ("r1", T0)
    assert after[key]["scored_comments"] == before[key]["scored_comments"] == 30
    assert after[key]["negative_comments"] == before[key]["negative_comments"] == 10
    expected_sum = sum(c.score for c in first) + 0.001  # c20 counted once, with the larger of its two scores
    assert after[key]["sentiment_sum"] == pytest.approx(expected_sum, abs=1e-9)
    assert after[key]["comments"] == 0  # (only scored comments were written)
    minutes, found = check_rollup(client, db)  # and the raw-table recomputation agrees, without a rebuild
    assert minutes == 1 and found == []


def test_migration_0004_backfills_and_running_it_again_changes_nothing(chdb_client: Client) -> None:
    """A store at version 3 with scored comments (one inserted twice, counted twice by the old view) is
    migrated: the new figures come from the raw table, each comment once; re-running the file (an
    interrupted migration is applied again) keeps them."""
    import uuid

    from warehouse.store import drop_database, insert_events

    client, db = chdb_client, f"t_{uuid.uuid4().hex[:12]}"
    migrations = load_migrations()
    try:
        migrate(client, db, migrations[:3])
        scored = [ScoredComment(event_id=f"c{i}", room_id="r1", user_id="u", text="x", label="negative",
                                score=-1.0, confidence=1.0, ts=T0 + i) for i in range(5)]
        insert_events(client, "scored_comment", scored, database=db)
        insert_events(client, "scored_comment", scored[:1], database=db)
        old = client.query(f"SELECT sum(scored_comments) FROM `{db}`.room_minute").result_rows[0][0]
        assert old == 6  # the old view counted the copy
        assert migrate(client, db)[0] == 4  # and any later migrations after it
        assert _rollup(client, db)[("r1", T0)]["scored_comments"] == 5
        for statement in split_statements(render(migrations[3].sql, db)):
            client.command(statement)
        figures = _rollup(client, db)[("r1", T0)]
        assert (figures["scored_comments"], figures["negative_comments"], figures["sentiment_sum"]) == (5, 5, -5.0)
        assert check_rollup(client, db)[1] == []
    finally:
        drop_database(client, db)


# ---- 14.9: edge values go in and come back --------------------------------------------------------


def _int_columns(tag: str) -> list[tuple[str, mi.IntType]]:
    info = mi.type_info(EVENT_TYPES[tag])
    assert isinstance(info, mi.StructType)
    out = []
    for f in info.fields:
        t = f.type.type if isinstance(f.type, mi.Metadata) else f.type
        if isinstance(t, mi.IntType):
            out.append((f.name, t))
    return out


@st.composite
def edge_events(draw: st.DrawFn, tag: str) -> Any:
    """A valid event of ``tag`` whose integer fields sit at their bounds (each at its min or max)."""
    cls = EVENT_TYPES[tag]
    for _ in range(50):
        kwargs = draw(struct_kwargs(cls))
        for name, t in _int_columns(tag):
            kwargs[name] = draw(st.sampled_from([t.ge if t.ge is not None else 0, t.le]))
        if tag == "sale_config":
            kwargs["starts_at"], kwargs["ends_at"] = MIN_TS_MS, MAX_TS_MS
        if tag == "presence":  # a traffic source and the follower flag belong to a join only
            kwargs["action"] = "join"
        try:
            return validate(cls(**kwargs))
        except (ValueError, TypeError):
            continue
    raise AssertionError(f"no valid edge event of {tag}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_integer_field_round_trips_at_its_bounds(warehouse_db: tuple[Client, str], data: st.DataObject) -> None:
    client, db = warehouse_db
    for tag in TABLES:
        columns = _int_columns(tag)
        if not columns:
            continue
        event = data.draw(edge_events(tag), label=tag)
        table = TABLES[tag].table
        client.command(f"TRUNCATE TABLE `{db}`.{table}")
        WarehouseWriter(client, db).write([event])
        exprs = [
            f"toUnixTimestamp64Milli({name})" if "DateTime" in dict(TABLES[tag].columns)[name] else name
            for name, _ in columns
        ]
        (row,) = client.query(f"SELECT {', '.join(exprs)} FROM `{db}`.{table}").result_rows
        assert list(row) == [getattr(event, name) for name, _ in columns], tag


def test_counters_beyond_the_envelope_are_stored_saturated(warehouse_db: tuple[Client, str]) -> None:
    """The attack's shape, summed far beyond the envelope: the snapshot validates and is stored."""
    client, db = warehouse_db
    snap = validate(RoomCounters(
        room_id="r1", window_start=T0, window_end=T0 + 1000, ts=T0 + 1000,
        gmv_reserved_cents_total=2 * 10**12 * 10**6, units_total=MAX_SAFE_INT,
        stock={"s1": SkuStock(available=0, reserved=0, sold=10**17, total=10**17)},
    ))
    WarehouseWriter(client, db).write([snap])
    row = client.query(
        f"SELECT gmv_reserved_cents_total, units_total, stock['s1'].3 FROM `{db}`.room_counters"
    ).result_rows[0]
    assert list(row) == [MAX_SAFE_INT, MAX_SAFE_INT, MAX_SAFE_INT]
