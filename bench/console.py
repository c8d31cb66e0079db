"""``python -m bench.console [--json]``: the console counters' pure core and its wire deltas.

Measures, on one core, (1) how many room events a second :class:`ConsoleCounters` folds, (2) what a
snapshot costs to build and how big it is as JSON after an hour-long stream, and (3) the bytes of the
per-second delta the dashboard would receive against re-sending the snapshot.  The stream is the
simulator's (one room, an hour, 2,000 viewers at the peak), decided by the flash-sale core, so the
event mix is the real one.  The last line is one JSON object; timed figures go to the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from schemas import OrderAttempt, Payment, SaleConfig
from schemas.base import Event
from simulator.config import ScenarioConfig
from simulator.generator import simulate
from streams.counters.console import ConsoleCounters, delta
from streams.flash_sale.inventory import Inventory


def stream(config: ScenarioConfig) -> list[Event]:
    """Every room-keyed event the console reads, in wire order, with the flash-sale job's answers."""
    inventory = Inventory()
    out: list[Event] = []
    for item in simulate(config):
        event = item.event
        if event is None:
            continue
        if isinstance(event, SaleConfig | OrderAttempt | Payment):
            inventory.handle(event)
            answers, stock = inventory.take_outputs()
            out += [*answers.results, *answers.alerts, *stock]
        else:
            out.append(event)
    return out


def run(duration_s: int, viewers: int) -> dict[str, Any]:
    config = ScenarioConfig(seed=1, duration_s=duration_s, peak_viewers=viewers, stock=500, buyers=3000)
    console = ConsoleCounters()
    events = [e for e in stream(config) if type(e) in console.event_types]
    room = f"s{config.seed}-room0"
    started = time.process_time()
    console.apply_all(events)
    fold_s = time.process_time() - started

    # snapshot and delta once per second of event time, over the last minute of the stream
    per_second: dict[int, list[Event]] = {}
    for e in events:
        per_second.setdefault(e.ts // 1000, []).append(e)  # type: ignore[attr-defined]
    replay = ConsoleCounters()
    seconds = sorted(per_second)
    for sec in seconds[:-60]:
        replay.apply_all(per_second[sec])
    last = replay.snapshot(room)
    delta_bytes: list[int] = []
    snap_s = 0.0
    for sec in seconds[-60:]:
        replay.apply_all(per_second[sec])
        t = time.process_time()
        snap = replay.snapshot(room)
        change = delta(last, snap)
        snap_s += time.process_time() - t
        delta_bytes.append(len(json.dumps(change, separators=(",", ":"))))
        last = snap
    snapshot_bytes = len(json.dumps(last, separators=(",", ":")))
    delta_bytes.sort()
    return {
        "bench": "console",
        "events": len(events),
        "events_per_s": round(len(events) / fold_s),
        "snapshot_plus_delta_ms": round(snap_s / 60 * 1000, 2),
        "snapshot_bytes": snapshot_bytes,
        "delta_bytes_p50": delta_bytes[len(delta_bytes) // 2],
        "delta_bytes_max": delta_bytes[-1],
        "series_minutes": len(last["series"]["rows"]),
        "markers": len(last["markers"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3600, help="event-time seconds of the stream")
    parser.add_argument("--viewers", type=int, default=2000, help="peak viewers")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = run(args.duration, args.viewers)
    if not args.json:
        for key, value in result.items():
            print(f"{key:>24}: {value}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
