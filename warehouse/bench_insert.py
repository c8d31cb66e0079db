"""Measure :func:`warehouse.store.insert_events` on the embedded engine: ``python -m warehouse.bench_insert``.

Creates a throw-away chdb directory, migrates it (so the comments rollup view runs too, as in
production) and inserts N comments in batches, printing rows/s per batch size.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from schemas.events import Comment
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.store import count_distinct_ids, insert_events

T0 = 1_760_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[200_000, 20_000, 5_000])
    args = parser.parse_args()
    events = [
        Comment(event_id=f"e{i}", room_id=f"room-{i % 5}", user_id=f"u{i % 5000}", text=f"好看 666 #{i}", ts=T0 + 5 * i)
        for i in range(args.rows)
    ]
    directory = tempfile.mkdtemp(prefix="lc-bench-chdb-")
    try:
        client = get_client(f"chdb://{directory}")
        for batch in args.batches:
            database = f"bench_{batch}"
            migrate(client, database)
            start = time.perf_counter()
            for i in range(0, len(events), batch):
                insert_events(client, "comment", events[i : i + batch], database=database)
            elapsed = time.perf_counter() - start
            assert count_distinct_ids(client, "comments", database=database) == len(events)
            print(f"batch {batch:>7}: {len(events) / elapsed:>9,.0f} rows/s ({elapsed:.2f} s for {len(events):,})")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
