"""``livecommerce reconcile``: check the per-minute rollups against the raw tables, report, then repair.

Why it exists: the materialized views that feed ``room_minute`` see every insert, so a batch the
sink re-inserted after a crash is counted twice there (the raw tables collapse it, the view does
not), and a batch cut by a kill can be missing.  The sink rebuilds once by itself after an unclean
stop; this command does it on demand (all rooms or one).

Order matters (issue 14, failure 13): the check runs FIRST and its findings (room, minute, figure,
rollup value, raw value) are printed before anything is rebuilt, so the check can fail; then the
rollup is rebuilt from the raw tables and checked again.  ``--check`` stops after the report.
Exit status: 0 when the rollup agrees with the raw tables at the end, 1 when it does not (or, with
``--check``, when anything disagreed), 3 when another process holds the embedded store.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from base.settings import Settings

if TYPE_CHECKING:
    from warehouse.rollups import Disagreement

HELP = ("Check the per-minute rollups against the raw tables (all rooms or --room), report every disagreement, "
        "then rebuild them (unless --check) and check again.")

#: Disagreements printed in full; the rest are counted.
SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--room", default=None, help="only this room (default: every room)")
    parser.add_argument("--database", default=None, help="database (default: the DSN's, else 'livecommerce')")
    parser.add_argument("--check", action="store_true", help="only report disagreements; exit 1 if there are any")


def describe(found: list[Disagreement], minutes: int) -> list[str]:
    """The lines that report what the check found, before anything is repaired."""
    if not found:
        return [f"checked {minutes} room-minutes: rollup equals the raw tables"]
    rooms = len({(d.room_id, str(d.minute)) for d in found})
    lines = [f"found {len(found)} figures in {rooms} room-minutes where the rollup disagrees with the raw tables:"]
    lines += [f"  {d}" for d in found[:SHOWN]]
    if len(found) > SHOWN:
        lines.append(f"  ... and {len(found) - SHOWN} more")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.embedded import busy_message

    dsn = settings.effective_clickhouse_dsn
    if busy := busy_message(dsn):
        print(busy, file=sys.stderr)
        return 3
    from warehouse.client import database_of, get_client
    from warehouse.migrate import migrate
    from warehouse.rollups import check_rollup, rebuild_rollups

    client = get_client(dsn)
    database = args.database or database_of(dsn)
    migrate(client, database)
    minutes, found = check_rollup(client, database, args.room)
    print("\n".join(describe(found, minutes)), flush=True)
    if not found or args.check:
        return 1 if found else 0
    started = time.monotonic()
    rebuild_rollups(client, database, room=args.room)
    minutes, after = check_rollup(client, database, args.room)
    print(f"rebuilt {minutes} room-minutes in {time.monotonic() - started:.2f} s; "
          + ("rollup equals the raw tables" if not after else "MISMATCH between rollup and raw tables"))
    return 1 if after else 0
