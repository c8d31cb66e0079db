"""Where a flash-sale answer's time goes, measured from outside the worker (pure functions).

Five timestamps of one attempt, all wall-clock milliseconds on this machine (one clock):

1. ``attempt_ts``: the attempt's ``ts``, stamped by the bench just before ``produce()``;
2. ``acked_ms``: the leader's append time of the attempt, which the bench producer's delivery report
   carries because the bench's ``orders`` topic uses ``LogAppendTime`` (the report's own arrival
   would be late whenever the busy bench loop polls late);
3. ``produced_ms``: the answer record's CreateTime, which librdkafka stamps when the worker calls
   ``produce()`` for it;
4. ``uncommitted_ms`` / ``committed_ms``: when a ``read_uncommitted`` and a ``read_committed`` reader
   of ``order-results`` in the bench got the answer.

The stages are their differences, so they add up to the whole latency exactly:

- ``send``: producer linger + send until the leader appended it (1 -> 2);
- ``worker``: replication to the in-sync replicas (the high watermark), the worker's fetch wait, and
  its batch loop up to this answer's ``produce()`` (2 -> 3).  Fetch wait and decision cannot be told
  apart from outside: the answer's own ``ts`` is the inventory's event-time clock (the attempts' ``ts``),
  not the worker's wall clock; splitting them needs a timing hook in the stream runtime;
- ``produce``: the answer's linger, send and replication plus the reader's fetch (3 -> 4 uncommitted);
- ``commit``: the transaction commit and its markers, until the last stable offset lets a
  ``read_committed`` reader see it (4 uncommitted -> 4 committed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STAGES = ("send", "worker", "produce", "commit")


@dataclass(frozen=True)
class Timeline:
    """The timestamps (ms) of one attempt from its produce to its committed answer being read."""

    attempt_ts: float
    acked_ms: float
    produced_ms: float
    uncommitted_ms: float
    committed_ms: float

    def stages(self) -> dict[str, float]:
        return {
            "send": self.acked_ms - self.attempt_ts,
            "worker": self.produced_ms - self.acked_ms,
            "produce": self.uncommitted_ms - self.produced_ms,
            "commit": self.committed_ms - self.uncommitted_ms,
        }

    @property
    def total(self) -> float:
        return self.committed_ms - self.attempt_ts


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank rule on sorted values; NaN-free input required."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def stage_summary(timelines: Sequence[Timeline]) -> dict[str, dict[str, float]]:
    """p50, p99 and max (ms) of every stage and of the total, over ``timelines``."""
    if not timelines:
        return {}
    columns: dict[str, list[float]] = {name: [] for name in (*STAGES, "total")}
    for t in timelines:
        for name, value in t.stages().items():
            columns[name].append(value)
        columns["total"].append(t.total)
    return {
        name: {"p50_ms": round(percentile(v, 0.5), 2), "p99_ms": round(percentile(v, 0.99), 2),
               "max_ms": round(max(v), 2)}
        for name, v in columns.items()
    }


def worst_seconds(
    timelines: Sequence[Timeline], gc_pauses: Iterable[tuple[float, float]] = (), count: int = 5
) -> list[dict[str, object]]:
    """The ``count`` seconds (by the attempts' second) with the highest p99 total, each with its stages'
    p99 and the broker GC pause time that fell in it: which stage made the stall, and was it GC."""
    by_second: dict[int, list[Timeline]] = {}
    for t in timelines:
        by_second.setdefault(int(t.attempt_ts // 1000), []).append(t)
    pauses = list(gc_pauses)
    rows = []
    for second, group in by_second.items():
        stages = {name: percentile([t.stages()[name] for t in group], 0.99) for name in STAGES}
        rows.append({
            "second": second,
            "answers": len(group),
            "p99_ms": round(percentile([t.total for t in group], 0.99), 1),
            "worst_stage": max(stages, key=lambda name: stages[name]),
            "stage_p99_ms": {name: round(v, 1) for name, v in stages.items()},
            "gc_pause_ms": round(sum(ms for at, ms in pauses if second * 1000 - 1000 <= at < second * 1000 + 1000), 1),
        })
    rows.sort(key=lambda row: float(row["p99_ms"]), reverse=True)  # type: ignore[arg-type]
    return rows[:count]


def gc_pauses(log_text: str) -> list[tuple[float, float]]:
    """(wall ms, pause ms) of every stop-the-world pause in a JVM ``-Xlog:gc:...:time`` log.

    A line looks like ``[2026-11-30T15:42:59.899+0000][0.452s] GC(0) Pause Young (Normal) (G1 Evacuation
    Pause) 3M->2M(66M) 7.795ms``; concurrent-cycle lines (no ``Pause``) are not stalls and are skipped.
    """
    from datetime import datetime

    pauses = []
    for line in log_text.splitlines():
        if " Pause " not in line or not line.endswith("ms") or not line.startswith("["):
            continue
        stamp = line[1:line.index("]")]
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000
            pause = float(line.rsplit(" ", 1)[1][:-2])
        except ValueError:
            continue
        pauses.append((at, pause))
    return pauses


def gc_summary(pauses: Iterable[tuple[float, float]], start_ms: float, end_ms: float) -> dict[str, float]:
    """Count, total and longest GC pause of the brokers between ``start_ms`` and ``end_ms``."""
    inside = [ms for at, ms in pauses if start_ms <= at <= end_ms]
    return {"pauses": len(inside), "total_ms": round(sum(inside), 1), "max_ms": round(max(inside, default=0.0), 1)}


#: JVM threads by role: HotSpot's JIT compilers and the VM thread (where the serial collector runs).
JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
VM_THREAD = "VM Thread"


def broker_cpu(
    before: Sequence[Mapping[str, float]], after: Sequence[Mapping[str, float]], seconds: float, cpus: int
) -> dict[str, float]:
    """The brokers' CPU in a window, from each broker's CPU seconds by thread name read at its start
    and end (``before[i]`` and ``after[i]`` are broker *i*'s): the share of the machine's cores the
    brokers took (``pct_of_machine``) and, of that, JIT compilation and the VM thread (serial GC and
    other safepoint work).  A thread that appeared in the window counts from zero; one that ended in it
    (a killed broker's, or a compiler thread HotSpot stopped) is lost, so these are lower bounds."""
    total = jit = vm = 0.0
    for start, end in zip(before, after, strict=True):
        for name, value in end.items():
            spent = max(0.0, value - start.get(name, 0.0))
            total += spent
            if name.startswith(JIT_THREADS):
                jit += spent
            elif name == VM_THREAD:
                vm += spent
    share = 100 / (seconds * cpus) if seconds > 0 and cpus > 0 else 0.0
    return {"cpu_s": round(total, 2), "pct_of_machine": round(total * share, 1),
            "jit_pct_of_machine": round(jit * share, 1), "vm_thread_pct_of_machine": round(vm * share, 1)}


def timelines_of(
    attempts: Mapping[str, float], acked: Mapping[str, float], produced: Mapping[str, float],
    uncommitted: Mapping[str, float], committed: Mapping[str, float],
) -> list[Timeline]:
    """Join the per-order_id observations into timelines; orders missing any observation are left out."""
    return [
        Timeline(attempts[oid], acked[oid], produced[oid], uncommitted[oid], committed[oid])
        for oid in committed
        if oid in attempts and oid in acked and oid in produced and oid in uncommitted
    ]
