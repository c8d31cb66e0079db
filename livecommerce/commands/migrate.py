"""``livecommerce migrate``: apply the warehouse's versioned DDL migrations (idempotent).

The sink migrates on start too; this command is for a ClickHouse server set up before any worker
runs (docker-compose's init step) and for checking which versions a store has.
"""

from __future__ import annotations

import argparse
import sys

from base.settings import Settings

HELP = "Apply the warehouse migrations to LC_CLICKHOUSE_DSN (idempotent); prints the versions applied."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", default=None, help="database (default: the DSN's, else 'livecommerce')")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.embedded import busy_message

    dsn = settings.effective_clickhouse_dsn
    if busy := busy_message(dsn):
        print(busy, file=sys.stderr)
        return 3
    from warehouse.client import database_of, get_client
    from warehouse.migrate import migrate

    database = args.database or database_of(dsn)
    applied = migrate(get_client(dsn), database)
    print(f"{database}: " + (f"applied migrations {applied}" if applied else "already up to date"))
    return 0
