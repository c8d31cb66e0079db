"""``livecommerce reconcile``: rebuild the per-minute rollups from the deduplicated raw tables.

Why it exists: the materialized views that feed ``room_minute`` see every insert, so a batch the
sink re-inserted after a crash is counted twice there (the raw tables collapse it, the view does
not), and a batch cut by a kill can be missing.  The sink rebuilds once by itself after an unclean
stop; this command does it on demand (all rooms or one) and then checks that rollup and raw agree.
"""

from __future__ import annotations

import argparse
import time

from base.settings import Settings

HELP = "Rebuild the per-minute rollups from the raw tables (all rooms or --room) and check they agree."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--room", default=None, help="only this room (default: every room)")
    parser.add_argument("--database", default=None, help="database (default: the DSN's, else 'livecommerce')")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from livecommerce.commands.report import refuse_busy_store

    dsn = settings.effective_clickhouse_dsn
    if refuse_busy_store(dsn):
        return 3
    from warehouse.client import database_of, get_client
    from warehouse.migrate import migrate
    from warehouse.rollups import rebuild_rollups, rollup_matches_raw

    client = get_client(dsn)
    database = args.database or database_of(dsn)
    migrate(client, database)
    started = time.monotonic()
    rebuild_rollups(client, database, room=args.room)
    minutes, agree = rollup_matches_raw(client, database, args.room)
    print(f"rebuilt {minutes} room-minutes in {time.monotonic() - started:.2f} s; "
          + ("rollup equals the raw tables" if agree else "MISMATCH between rollup and raw tables"))
    return 0 if agree else 1

