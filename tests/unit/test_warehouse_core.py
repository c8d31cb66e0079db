"""Pure parts of the warehouse: migration planning, statement splitting, DSN checks, type spelling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import Comment, Like
from warehouse.client import DsnError, check_dsn
from warehouse.embedded import busy_message, embedded_store_busy, is_lock_error, store_path
from warehouse.migrate import Migration, MigrationError, load_migrations, plan, render, split_statements
from warehouse.rollups import COLUMNS, ROLLUP_COLUMNS, ROLLUP_SOURCES, disagreements
from warehouse.store import normalize_type
from warehouse.writer import rebuild_needed, tables_of

T0 = 1_767_225_600_000

versions = st.lists(st.integers(1, 50), unique=True, max_size=8).map(sorted)


@given(versions, st.data())
def test_plan_returns_exactly_the_missing_versions_in_order(all_versions: list[int], data: st.DataObject) -> None:
    available = [Migration(v, f"m{v}", f"SELECT {v}") for v in all_versions]
    applied_subset = data.draw(st.sets(st.sampled_from(all_versions)) if all_versions else st.just(set()))
    applied = {m.version: m.checksum for m in available if m.version in applied_subset}
    todo = plan(available, applied)
    assert [m.version for m in todo] == [v for v in all_versions if v not in applied_subset]
    assert plan(available, {m.version: m.checksum for m in available}) == []


def test_plan_refuses_a_changed_applied_migration() -> None:
    original = Migration(1, "raw", "CREATE TABLE a (x UInt8)")
    edited = Migration(1, "raw", "CREATE TABLE a (x UInt16)")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        plan([edited], {1: original.checksum})


def test_plan_refuses_a_database_newer_than_the_code() -> None:
    with pytest.raises(MigrationError, match="does not know"):
        plan([Migration(1, "raw", "x")], {1: Migration(1, "raw", "x").checksum, 2: "abc"})


def test_split_statements_drops_comments_and_splits_at_line_ending_semicolons() -> None:
    sql = "-- header; not a statement\nCREATE TABLE a (s String DEFAULT 'x;y');\n\n-- c\nSELECT 1;\nSELECT 2"
    assert split_statements(sql) == ["CREATE TABLE a (s String DEFAULT 'x;y')", "SELECT 1", "SELECT 2"]


def test_render_quotes_the_database_and_refuses_injection() -> None:
    assert render("CREATE TABLE {db}.t", "lc_1") == "CREATE TABLE `lc_1`.t"
    with pytest.raises(ValueError):
        render("{db}", "x`; DROP DATABASE y")


def test_shipped_migrations_have_consecutive_versions_and_re_runnable_statements() -> None:
    """Every statement may run twice (ClickHouse DDL is not transactional; an interrupted migration is
    applied again): CREATE / ADD say IF NOT EXISTS, DROP says IF EXISTS, and an INSERT only writes
    order-free aggregate states of the rollup, which a second copy does not change."""
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    merged = {c.stored for c in COLUMNS if c.combine == "merge"}
    for m in migrations:
        for statement in split_statements(m.sql):
            upper = statement.upper()
            if upper.startswith("INSERT"):
                columns = statement.split("(", 2)[1].split(")")[0]
                assert {c.strip() for c in columns.split(",")} - {"room_id", "minute"} <= merged, statement[:80]
            elif upper.startswith("DROP") or " DROP COLUMN " in upper:
                assert "IF EXISTS" in upper, (m.name, statement[:60])
            else:
                assert "IF NOT EXISTS" in upper, (m.name, statement[:60])


def test_the_views_in_the_migrations_write_what_the_rebuild_writes() -> None:
    """rebuild_rollups must insert what the views insert, expression for expression."""
    text = " ".join(" ".join(m.sql.split()) for m in load_migrations())
    for source, time_column, exprs in ROLLUP_SOURCES:
        assert f"FROM {{db}}.{source} GROUP BY room_id, minute" in text, source
        assert f"toStartOfMinute({time_column}) AS minute" in text, source
        for expr in exprs:
            assert expr in text, expr


def test_rollup_columns_come_from_the_sources_once_each() -> None:
    names = [name for name, _, _ in ROLLUP_COLUMNS]
    assert len(names) == len(set(names))
    assert {source for source, _, _ in ROLLUP_SOURCES} <= {
        "comments", "likes", "orders", "order_results", "scored_comments", "room_counters"
    }
    assert dict((n, fn) for n, fn, _ in ROLLUP_COLUMNS)["online_peak"] == "max"


@pytest.mark.parametrize(
    "dsn", ["chdb:///abs/dir", "http://default:pw@localhost:8123/lc", "https://h.example:8443/lc"]
)
def test_accepted_dsns(dsn: str) -> None:
    assert check_dsn(dsn) in ("chdb", "http", "https")


@pytest.mark.parametrize("dsn", ["chdb://relative/dir", "chdb:relative", "http:///nohost", "mysql://h/db", ""])
def test_refused_dsns_say_what_is_expected(dsn: str) -> None:
    with pytest.raises(DsnError, match=r"chdb:///|http"):
        check_dsn(dsn)


def test_normalize_type_joins_multiline_named_tuples() -> None:
    described = "Map(String, Tuple(\n    available UInt64,\n    sold UInt64))"
    assert normalize_type(described) == "Map(String, Tuple(available UInt64, sold UInt64))"


# ---- the writer's and the busy check's decisions (moved into warehouse/, issue 10) ---------------


def test_a_rebuild_is_needed_only_after_a_run_that_did_not_stop_cleanly() -> None:
    assert not rebuild_needed(0, None)  # first run ever
    assert not rebuild_needed(3, 1)  # the last run stopped cleanly
    assert rebuild_needed(3, 0)  # killed


def test_tables_of_groups_events_by_their_raw_table_in_order() -> None:
    c1 = Comment(event_id="c1", room_id="r", user_id="u", text="a", ts=T0)
    c2 = Comment(event_id="c2", room_id="r", user_id="u", text="b", ts=T0)
    like = Like(event_id="l1", room_id="r", ts=T0)
    assert tables_of([c1, like, c2]) == {"comments": [c1, c2], "likes": [like]}


def test_only_embedded_dsns_have_a_store_path_and_lock_errors_are_recognised() -> None:
    assert store_path("chdb:///data/ch") == Path("/data/ch")
    assert store_path("http://u:p@h:8123/db") is None
    assert is_lock_error(RuntimeError("Code: 76. Cannot lock file /x/status. Another server instance..."))
    assert not is_lock_error(RuntimeError("Code: 60. Table x does not exist"))


def test_a_store_locked_by_another_process_is_busy(tmp_path: Path) -> None:
    """The one system call, against a real flock held by another process."""
    (tmp_path / "status").write_text("")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys,time; f=open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)", str(tmp_path / "status")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert embedded_store_busy(f"chdb://{tmp_path}")
        message = busy_message(f"chdb://{tmp_path}")
        assert message is not None and str(tmp_path) in message
    finally:
        holder.kill()
        holder.wait()
    assert not embedded_store_busy(f"chdb://{tmp_path}") and busy_message(f"chdb://{tmp_path}") is None


figure_rows = st.lists(
    st.tuples(st.sampled_from(["room-a", "room-b"]), st.integers(0, 5),
              st.lists(st.integers(0, 3), min_size=len(COLUMNS), max_size=len(COLUMNS))),
    max_size=8, unique_by=lambda r: (r[0], r[1]),
).map(lambda rows: [[room, minute, *values] for room, minute, values in rows])


@given(figure_rows, figure_rows)
def test_disagreements_name_exactly_the_figures_that_differ(ours: list[list[object]],
                                                            truth: list[list[object]]) -> None:
    names = [c.name for c in COLUMNS]
    found = disagreements(ours, truth)
    index = {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in ours}
    raw = {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in truth}
    expected = {
        (room, minute, name)
        for room, minute in index.keys() | raw.keys() for name in names
        if index.get((room, minute), {}).get(name, 0) != raw.get((room, minute), {}).get(name, 0)
    }
    assert {(d.room_id, d.minute, d.figure) for d in found} == expected
    assert disagreements(ours, ours) == []


def test_each_stored_event_type_has_a_raw_table_of_its_own() -> None:
    """tables_of resolves the table once per event type and returns one group per table: two types
    sharing a table would make one group overwrite the other's."""
    from schemas.clickhouse import TABLE_OF_TAG

    assert len(set(TABLE_OF_TAG.values())) == len(TABLE_OF_TAG)
