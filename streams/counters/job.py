"""The counters job on the stream runtime: room events in, 1-s room-counters snapshots out (and,
every 250 ms, the open window of each changed room on room-counters-live, for the dashboard).

Each input partition's :class:`CountersTask` adapts one pure
:class:`~streams.counters.core.PartitionCounters`.  All room-keyed inputs are co-partitioned
(murmur2 of room_id), so one task is the single writer of a room.  The job validates (and
dead-letters) comments, likes and presence; the other inputs are other jobs' outputs.  It commits
every 500 ms, at once when a window closed (its snapshot is readable only after the commit), and
every second while it works through a backlog.

Why not a Faust agent: stock Faust does ~12k events/s here (~3.7k/s with a table write per event);
this job needs >= 30k/s (docs/decisions/0001).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from base.settings import Settings
from schemas.base import Event
from streams.counters.core import CounterConfig, PartitionCounters
from streams.runtime.commit import CommitPolicy
from streams.runtime.job import Job, Output, Record
from streams.runtime.runner import RunnerConfig

#: Logical input topics; the first three are validated (and dead-lettered) by this job alone.
OWNED_INPUTS = ("comments", "likes", "presence")
OTHER_INPUTS = ("scored-comments", "order-results", "stock")
INPUTS = OWNED_INPUTS + OTHER_INPUTS
CHANGELOG = "counters-changelog"


class CountersTask:
    """One partition's rooms, seen through the runtime's Task protocol."""

    def __init__(self, counters: PartitionCounters) -> None:
        self.counters = counters
        self._outputs: list[Output] = []

    def process(self, events: list[Event], wall_ms: int) -> None:
        self.counters.apply_all(events, wall_ms)

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        snapshots = self.counters.emit(wall_ms)
        if snapshots:
            self._outputs += [("room-counters", snap) for snap in snapshots]
        live = self.counters.emit_live(wall_ms)
        if live:
            self._outputs += [("room-counters-live", snap) for snap in live]

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    def take_changes(self) -> list[Record]:
        return list(self.counters.take_changes())

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        return []


def counters_job(config: CounterConfig | None = None, wall_ms: Callable[[], int] | None = None) -> Job:
    from base.clock import now_ms

    clock = wall_ms or now_ms

    def new_task(partition: int, records: list[Record]) -> CountersTask:
        task = CountersTask(PartitionCounters.restore(records, config, wall_ms=clock()))
        gc.freeze()  # restored state lives long: keep it out of every later collection's scan
        return task

    return Job(name="counters", inputs=INPUTS, owned=frozenset(OWNED_INPUTS), new_task=new_task,
               changelog=CHANGELOG)


RUNNER_CONFIG = RunnerConfig(
    policy=CommitPolicy(interval_ms=500, backlog_interval_ms=1000),
    batch_size=5000,
    poll_timeout_s=0.05,
)

#: Every event is a short-lived object: with the default thresholds the collector runs every 700
#: allocations and now and then scans the whole (large, long-lived) state, a pause that lands on the
#: freshness tail.  Collect young objects less often.
GC_THRESHOLD = (50_000, 20, 100)


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker counters``: run until SIGTERM/SIGINT; /metrics on ``web_port``."""
    from streams.runtime.run import run_job
    from streams.runtime.runner import Runner

    return run_job(settings, Runner(settings, counters_job(), worker_id, RUNNER_CONFIG), web_port, GC_THRESHOLD)
