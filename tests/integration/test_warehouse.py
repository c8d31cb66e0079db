"""The warehouse on the real ClickHouse engine (chdb, embedded): migrations, DDL = schemas, idempotent
replays, rollups and their rebuild."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from schemas import EVENT_TYPES, validate
from schemas.base import Event
from schemas.clickhouse import TABLES, spec_for
from schemas.events import (
    Alert,
    Comment,
    DeadLetter,
    Follow,
    HostAction,
    Like,
    OrderAttempt,
    OrderResult,
    Payment,
    Presence,
    ProductClick,
    ProductImpression,
    RoomBenchmark,
    RoomCounters,
    SaleConfig,
    ScoredComment,
    Share,
    SkuStock,
    StockUpdate,
)
from warehouse.migrate import Migration, MigrationError, applied_versions, load_migrations, migrate
from warehouse.rollups import ROLLUP_COLUMNS, raw_rollup_query, rebuild_rollups, rollup_query
from warehouse.store import NATURAL_ID, count_distinct_ids, count_rows, insert_events, table_columns

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.integration

T0 = 1_760_000_000_000  # 2025-10-09, an arbitrary stream start
MINUTE = 60_000


def sample_events(seed: int, per_type: int = 60, rooms: int = 3) -> dict[str, list[Event]]:
    """Events of every stored type over ~5 minutes of a few rooms, each with its own natural id."""
    rng = random.Random(seed)
    room = [f"room-{i}" for i in range(rooms)]

    def ts() -> int:
        return T0 + rng.randrange(5 * MINUTE)

    ev: dict[str, list[Event]] = defaultdict(list)
    for i in range(per_type):
        r = rng.choice(room)
        sku = f"{r}-sku-{rng.randrange(3)}"
        ev["comment"].append(
            Comment(event_id=f"c{i}", room_id=r, user_id=f"u{i % 17}", text=f"好 nice {i} 🔥", ts=ts())
        )
        ev["like"].append(
            Like(event_id=f"l{i}", room_id=r, user_id=None if i % 3 else f"u{i}", count=rng.randint(1, 50), ts=ts())
        )
        action = rng.choice(["join", "leave"])
        ev["presence"].append(
            Presence(event_id=f"p{i}", room_id=r, user_id=f"u{i % 11}", action=action, ts=ts(),
                     source=rng.choice(["search", "ads", None]) if action == "join" else None,
                     is_follower=rng.choice([True, False, None]) if action == "join" else None)
        )
        placement = rng.choice(["pinned", "shelf"])
        ev["impression"].append(
            ProductImpression(event_id=f"i{i}", room_id=r, sku_id=sku, user_id=f"u{i % 13}", placement=placement,
                              ts=ts())
        )
        ev["product_click"].append(
            ProductClick(event_id=f"k{i}", room_id=r, sku_id=sku, user_id=f"u{i % 13}", placement=placement, ts=ts())
        )
        ev["follow"].append(Follow(event_id=f"f{i}", room_id=r, user_id=f"u{i}", ts=ts()))
        ev["share"].append(Share(event_id=f"sh{i}", room_id=r, user_id=f"u{i}", channel="wechat", ts=ts()))
        ev["host_action"].append(
            HostAction(event_id=f"h{i}", room_id=r, host_id=f"host-{r}", action="restock" if i % 2 else "pin",
                       sku_id=sku, stock=5 if i % 2 else None, ts=ts())
        )
        ev["room_benchmark"].append(
            RoomBenchmark(room_id=r, streams=i % 5, since=T0 - 14 * 86_400_000, ctr=0.05 if i % 2 else None,
                          avg_watch_ms=61_000.5, gpm_cents=1234.5, ts=T0 + i)
        )
        ev["sale_config"].append(
            SaleConfig(
                event_id=f"s{i}",
                room_id=r,
                sku_id=sku,
                action="open",
                stock=100,
                price_cents=1990,
                starts_at=T0,
                ends_at=T0 + 10 * MINUTE,
                title="限时 flash" if i % 2 else None,
                ts=ts(),
            )
        )
        ev["order"].append(
            OrderAttempt(order_id=f"o{i}", room_id=r, sku_id=sku, user_id=f"u{i}", quantity=rng.randint(1, 3), ts=ts())
        )
        ev["payment"].append(
            Payment(
                event_id=f"pay{i}", order_id=f"o{i}", room_id=r, sku_id=sku, user_id=f"u{i}", action="paid", ts=ts()
            )
        )
        status = rng.choice(["accepted", "rejected", "paid"])
        ev["order_result"].append(
            OrderResult(
                order_id=f"o{i}",
                room_id=r,
                sku_id=sku,
                user_id=f"u{i}",
                status=status,
                reason="sold_out" if status == "rejected" else None,
                quantity=rng.randint(1, 3),
                price_cents=rng.choice([990, 1990]),
                reserved_until=T0 + MINUTE if status == "accepted" else None,
                attempt_ts=T0,
                ts=ts(),
            )
        )
        ev["stock"].append(
            StockUpdate(room_id=r, sku_id=sku, available=i, reserved=1, sold=2, total=i + 3, price_cents=1990, ts=ts())
        )
        ev["scored_comment"].append(
            ScoredComment(
                event_id=f"c{i}",
                room_id=r,
                user_id=f"u{i}",
                text=f"text {i}",
                label=rng.choice(["positive", "neutral", "negative"]),
                score=round(rng.uniform(-1, 1), 3),
                confidence=0.9,
                ts=ts(),
            )
        )
        ev["room_counters"].append(
            RoomCounters(
                room_id=room[i % rooms],
                window_start=T0 + (i // rooms) * 1000,
                window_end=T0 + (i // rooms) * 1000 + 1000,
                online=rng.randrange(1000),
                comments=rng.randrange(10),
                sentiment_avg=None if i % 2 else 0.5,
                stock={sku: SkuStock(available=1, reserved=2, sold=3, total=6)},
                ts=T0 + (i // rooms) * 1000 + 1000,
            )
        )
        ev["alert"].append(
            Alert(alert_id=f"a{i}", room_id=r, kind="burst", level="warning", message=f"burst {i}", value=i, ts=ts())
        )
        ev["dead_letter"].append(
            DeadLetter(
                source_topic="lc.orders",
                partition=i % 3,
                offset=i,
                key=None if i % 2 else b"k",
                payload=bytes([0xFF, i % 256]) + b"{bad",
                reason="not valid JSON",
                ts=ts(),
            )
        )
    return {tag: [validate(e) for e in items] for tag, items in ev.items()}


def insert_all(client: Client, database: str, events: dict[str, list[Event]], batch: int = 1000) -> None:
    for tag, items in events.items():
        for i in range(0, len(items), batch):
            insert_events(client, tag, items[i : i + batch], database=database)


def test_migrations_apply_and_re_running_is_a_no_op(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    shipped = load_migrations()
    assert applied_versions(client, db) == {m.version: m.checksum for m in shipped}
    tables = {r[0] for r in client.query(f"SHOW TABLES FROM `{db}`").result_rows}
    assert {spec.table for spec in TABLES.values()} | {"room_minute", "schema_migrations"} <= tables
    assert migrate(client, db) == []
    assert client.query(f"SELECT count() FROM `{db}`.schema_migrations").result_rows[0][0] == len(shipped)


def test_a_new_migration_is_applied_alone(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    extra = Migration(
        max(m.version for m in load_migrations()) + 1, "extra",
        "CREATE TABLE IF NOT EXISTS {db}.extra (x UInt8) ENGINE = Memory;",
    )
    assert migrate(client, db, [*load_migrations(), extra]) == [extra.version]
    assert client.query(f"EXISTS TABLE `{db}`.extra").result_rows[0][0] == 1


def test_a_changed_applied_migration_is_refused(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    first, *rest = load_migrations()
    edited = Migration(first.version, first.name, first.sql + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(client, db, [edited, *rest])


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
def test_raw_table_columns_equal_the_schema_mapping(warehouse_db: tuple[Client, str], tag: str) -> None:
    client, db = warehouse_db
    spec = TABLES[tag]
    assert table_columns(client, spec.table, database=db) == list(spec.columns)


def _read_back(client: Client, db: str, tag: str) -> list[tuple[Any, ...]]:
    """Rows as stored, with timestamps back to epoch ms and strings as bytes, ordered by natural id."""
    spec = TABLES[tag]
    exprs = [
        f"toUnixTimestamp64Milli({name})" if "DateTime64" in ctype else f"`{name}`" for name, ctype in spec.columns
    ]
    result = client.query(
        f"SELECT {', '.join(exprs)} FROM `{db}`.{spec.table} FINAL ORDER BY {NATURAL_ID[spec.table]}",
        column_formats={name: "bytes" for name, ctype in spec.columns if ctype in ("String", "Nullable(String)")},
    )
    return [tuple(row) for row in result.result_rows]


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
def test_rows_read_back_equal_what_was_inserted(warehouse_db: tuple[Client, str], tag: str) -> None:
    client, db = warehouse_db
    events = sample_events(seed=7, per_type=12)[tag]
    insert_events(client, tag, events, database=db)
    spec = TABLES[tag]

    def expected(e: Event) -> tuple[Any, ...]:
        out = []
        for (_, ctype), value in zip(spec.columns, spec_for(tag).to_row(e), strict=True):
            if isinstance(value, str) and ctype in ("String", "Nullable(String)"):
                value = value.encode()
            if isinstance(value, dict):
                value = {
                    k: dict(zip(("available", "reserved", "sold", "total"), v, strict=True)) for k, v in value.items()
                }
            out.append(value)
        return tuple(out)

    got = _read_back(client, db, tag)
    assert sorted(got, key=repr) == sorted(map(expected, events), key=repr)


def test_replaying_the_same_events_leaves_distinct_counts_unchanged(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    events = sample_events(seed=1)
    insert_all(client, db, events, batch=1000)
    first = {spec.table: count_distinct_ids(client, spec.table, database=db) for spec in TABLES.values()}
    assert first == {TABLES[tag].table: len(items) for tag, items in events.items()}
    # at-least-once: the whole stream again, in different batch boundaries, plus a partial replay
    insert_all(client, db, events, batch=25)
    insert_all(client, db, {tag: items[: len(items) // 2] for tag, items in events.items()}, batch=19)
    for spec in TABLES.values():
        assert count_distinct_ids(client, spec.table, database=db) == first[spec.table], spec.table
        assert count_rows(client, spec.table, final=True, database=db) == first[spec.table], spec.table
        assert count_rows(client, spec.table, database=db) >= first[spec.table]


def _rollup(client: Client, sql: str, room: str | None = None) -> list[tuple[Any, ...]]:
    """Rollup rows; float sums rounded, since their last bits depend on the order of addition."""
    rows = client.query(sql, parameters={"room": room}).result_rows
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows]


def test_rollups_equal_group_by_on_raw_data(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    events = sample_events(seed=2, per_type=400)
    insert_all(client, db, events, batch=150)
    rollup = _rollup(client, rollup_query(db))
    assert rollup == _rollup(client, raw_rollup_query(db))
    # and against an independent count in Python, for the columns a host looks at first
    names = ["room_id", "minute", *(n for n, _, _ in ROLLUP_COLUMNS)]
    by_key = {(r[0], int(r[1].timestamp()) * 1000): dict(zip(names, r, strict=True)) for r in rollup}
    comments = Counter((e.room_id, e.ts // MINUTE * MINUTE) for e in events["comment"])  # type: ignore[attr-defined]
    likes: Counter[tuple[str, int]] = Counter()
    for e in events["like"]:
        likes[(e.room_id, e.ts // MINUTE * MINUTE)] += e.count  # type: ignore[attr-defined]
    gmv: Counter[tuple[str, int]] = Counter()
    for e in events["order_result"]:
        if e.status == "accepted":  # type: ignore[attr-defined]
            gmv[(e.room_id, e.ts // MINUTE * MINUTE)] += e.quantity * e.price_cents  # type: ignore[attr-defined]
    online: dict[tuple[str, int], int] = {}
    for e in events["room_counters"]:
        key = (e.room_id, e.window_start // MINUTE * MINUTE)  # type: ignore[attr-defined]
        online[key] = max(online.get(key, 0), e.online)  # type: ignore[attr-defined]
    assert {k: v["comments"] for k, v in by_key.items() if v["comments"]} == dict(comments)
    assert {k: v["likes"] for k, v in by_key.items() if v["likes"]} == dict(likes)
    assert {k: v["gmv_reserved_cents"] for k, v in by_key.items() if v["gmv_reserved_cents"]} == +gmv
    assert {k: v["online_peak"] for k, v in by_key.items() if k in online} == online


def test_rebuild_rollups_repairs_replays_and_a_broken_rollup(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    events = sample_events(seed=3, per_type=200)
    insert_all(client, db, events)
    truth = _rollup(client, raw_rollup_query(db))
    insert_all(client, db, events, batch=50)  # a replay: views count it again, raw tables collapse it
    client.command(f"TRUNCATE TABLE `{db}`.room_minute")  # and a crash that lost part of the rollup
    insert_events(client, "comment", events["comment"][:20], database=db)
    assert _rollup(client, rollup_query(db)) != truth
    assert _rollup(client, raw_rollup_query(db)) == truth

    rebuild_rollups(client, db)
    assert _rollup(client, rollup_query(db)) == truth


def test_rebuild_of_one_room_leaves_the_others_alone(warehouse_db: tuple[Client, str]) -> None:
    client, db = warehouse_db
    events = sample_events(seed=4, per_type=150)
    insert_all(client, db, events)
    truth = _rollup(client, raw_rollup_query(db))
    insert_all(client, db, events)  # every room double-counted by the views
    doubled = _rollup(client, rollup_query(db))
    rebuild_rollups(client, db, room="room-1")
    after = _rollup(client, rollup_query(db))
    assert [r for r in after if r[0] == "room-1"] == [r for r in truth if r[0] == "room-1"]
    assert [r for r in after if r[0] != "room-1"] == [r for r in doubled if r[0] != "room-1"]
    assert [r for r in after if r[0] != "room-1"] != [r for r in truth if r[0] != "room-1"]
