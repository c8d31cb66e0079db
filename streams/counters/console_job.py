"""The console job on the stream runtime: room events in, each changed room's console out (``room-console``).

Its own job (consumer group, changelog, process), apart from the counters job: the console reads
more topics (the funnel, host actions, alerts, the counters' own snapshots for online) and does
more per event (hot words cost a jieba pass per comment text), and none of that may slow the 1-s
tiles.  Each input partition's :class:`ConsoleTask` adapts one pure
:class:`~streams.counters.console.ConsoleCounters`; every input is keyed by room_id, so one task
is the single writer of a room.

Owned inputs (validated and dead-lettered here): the funnel topics nobody else reads as a job.
Comments, likes and presence are owned by the counters job (one dead letter per bad message, not
two); the rest are other jobs' outputs.

Output: per changed room, at most once per :data:`PUBLISH_INTERVAL_MS` of wall time, the whole
console (:class:`schemas.console.RoomConsoleView`) on a compacted topic, so a gateway that starts
later reads the latest one per room.  Why whole and not a delta: compaction keeps one record per
key, and only a whole view is still right alone; the gateway turns consecutive views into deltas.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from base.settings import Settings
from schemas.base import Event
from streams.counters.console import ConsoleCounters, view_of
from streams.counters.hotwords import HotWords
from streams.counters.job import GC_THRESHOLD as COUNTERS_GC_THRESHOLD
from streams.counters.job import RUNNER_CONFIG as COUNTERS_RUNNER_CONFIG
from streams.runtime.job import Job, Output, Record

OWNED_INPUTS = ("impressions", "product-clicks", "follows", "shares", "host-actions")
OTHER_INPUTS = ("presence", "comments", "likes", "order-results", "stock", "alerts", "room-counters",
                "room-benchmarks")
INPUTS = OWNED_INPUTS + OTHER_INPUTS
OUTPUT = "room-console"
CHANGELOG = "console-changelog"
#: A room's console goes out at most this often (wall time); a dashboard redraws about once a second.
PUBLISH_INTERVAL_MS = 1000


class ConsoleTask:
    """One partition's rooms, seen through the runtime's Task protocol.

    ``changed`` rooms wait for their next publication; a restored task starts with every room
    changed, so a view that was checkpointed but not yet published (a crash inside the throttle
    second) still goes out once.
    """

    def __init__(self, console: ConsoleCounters, interval_ms: int = PUBLISH_INTERVAL_MS) -> None:
        self.console = console
        self.interval_ms = interval_ms
        self.changed: set[str] = set(console.rooms)
        self.published_at: dict[str, int] = {}
        self._outputs: list[Output] = []

    def process(self, events: list[Event], wall_ms: int) -> None:
        apply = self.console.apply
        changed = self.changed
        for event in events:
            apply(event)
            changed.add(event.room_id)  # type: ignore[attr-defined]

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        if not self.changed:
            return
        due = [room for room in self.changed if wall_ms - self.published_at.get(room, -(2**62)) >= self.interval_ms]
        for room in sorted(due):
            self.changed.discard(room)
            self.published_at[room] = wall_ms
            self._outputs.append((OUTPUT, view_of(self.console.snapshot(room), wall_ms)))

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    def take_changes(self) -> list[Record]:
        return list(self.console.take_changes())

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        return []


def console_job(hot_words: bool = True) -> Job:
    """The job; ``hot_words=False`` leaves jieba out (tests of the counts alone)."""

    def new_task(partition: int, records: list[Record]) -> ConsoleTask:
        console = ConsoleCounters.restore(records)
        # Hot words are not checkpointed: a restarted worker has them back within their one-minute window.
        console.hot_words = HotWords() if hot_words else None
        task = ConsoleTask(console)
        gc.freeze()  # restored state lives long: keep it out of every later collection's scan
        return task

    return Job(name="console", inputs=INPUTS, owned=frozenset(OWNED_INPUTS), new_task=new_task,
               changelog=CHANGELOG)


#: The counters' cadence and collector thresholds: the same kind of traffic, the same kind of state.
RUNNER_CONFIG = COUNTERS_RUNNER_CONFIG
GC_THRESHOLD = COUNTERS_GC_THRESHOLD


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker console``: run until SIGTERM/SIGINT; /metrics on ``web_port``."""
    from streams.runtime.run import run_job
    from streams.runtime.runner import Runner

    return run_job(settings, Runner(settings, console_job(), worker_id, RUNNER_CONFIG), web_port, GC_THRESHOLD)
