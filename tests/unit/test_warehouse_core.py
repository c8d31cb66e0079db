"""Pure parts of the warehouse: migration planning, statement splitting, DSN checks, type spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.client import DsnError, check_dsn
from warehouse.migrate import Migration, MigrationError, load_migrations, plan, render, split_statements
from warehouse.rollups import COLUMNS, ROLLUP_COLUMNS, ROLLUP_SOURCES
from warehouse.store import normalize_type

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
