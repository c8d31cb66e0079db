"""Versioned, idempotent schema migrations.

Migrations are the SQL files ``warehouse/migrations/NNNN_name.sql`` (package data), applied in
version order.  ``{db}`` in a file stands for the target database, so one set of files serves every
database (tests create one per test).  ``schema_migrations`` records each applied version with the
SHA-256 of its file text: :func:`migrate` applies only the missing versions, is a no-op when run
again, and refuses to run when an applied file has changed (changing history silently would leave
databases that claim the same version but differ).  Change the schema with a new file instead.

ClickHouse DDL is not transactional, so every statement is written to be re-runnable
(``IF NOT EXISTS``): a migration interrupted half-way is simply applied again, and recorded only
after all its statements succeeded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(RuntimeError):
    """The database's migration history and the code's migration files disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file: ``--`` comment lines dropped, split at a ``;`` ending a line."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


def render(sql: str, database: str) -> str:
    """Substitute the (validated) database name for ``{db}``."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"database name must match {_IDENTIFIER.pattern}, got {database!r}")
    return sql.replace("{db}", f"`{database}`")


def load_migrations() -> list[Migration]:
    """Every migration file shipped with the package, by version; raises on duplicate versions."""
    folder = resources.files("warehouse").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migration files have version {version:04d}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def plan(available: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply, given ``applied`` (version -> checksum). Pure.

    Raises MigrationError if an applied migration's file changed or no longer exists (the database
    is newer than this code).
    """
    by_version = {m.version: m for m in available}
    for version, checksum in sorted(applied.items()):
        m = by_version.get(version)
        if m is None:
            raise MigrationError(f"database has migration {version:04d}, which this code does not know")
        if m.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{m.name}.sql changed after it was applied "
                f"(recorded sha256 {checksum[:12]}..., file {m.checksum[:12]}...); add a new migration instead"
            )
    return [m for m in available if m.version not in applied]


def applied_versions(client: Client, database: str) -> dict[int, str]:
    """Version -> checksum of every migration recorded in ``database``."""
    rows = client.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {render('{db}', database)}.schema_migrations "
        "GROUP BY version"
    ).result_rows
    return {int(v): str(c) for v, c in rows}


def migrate(client: Client, database: str, migrations: list[Migration] | None = None) -> list[int]:
    """Bring ``database`` up to date; returns the versions applied now (empty when already current)."""
    migrations = load_migrations() if migrations is None else migrations
    db = render("{db}", database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations ("
        " version UInt32, name String, checksum String,"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )
    todo = plan(migrations, applied_versions(client, database))
    for m in todo:
        for statement in split_statements(render(m.sql, database)):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[m.version, m.name, m.checksum]],
            column_names=["version", "name", "checksum"],
            database=database,
        )
    return [m.version for m in todo]
