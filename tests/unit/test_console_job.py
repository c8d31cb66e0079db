"""The console job's Task adapter: what it publishes, how often, and what survives a restore."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import TOPICS, decode, encode
from schemas.console import RoomConsoleView, view_body
from simulator.config import ScenarioConfig
from streams.counters.console import ConsoleCounters, view_of
from streams.counters.console_job import INPUTS, OUTPUT, OWNED_INPUTS, ConsoleTask, console_job
from streams.counters.job import OWNED_INPUTS as COUNTERS_OWNED
from tests.console_stream import decided_stream

CONFIG = ScenarioConfig(seed=8, rooms=3, duration_s=240, peak_viewers=200, stock=40, buyers=150, restock=10)
WALL = 1_900_000_000_000


def console_inputs() -> list:
    d = decided_stream(CONFIG)
    types = {TOPICS[name].event for name in INPUTS}
    return [e for e in d.room_keyed if type(e) in types]


EVENTS = console_inputs()


def run(task: ConsoleTask, events: list, wall: int, batch: int = 500, step_ms: int = 200) -> int:
    for i in range(0, len(events), batch):
        task.process(events[i:i + batch], wall)
        task.punctuate(wall, lambda: True)
        wall += step_ms
    return wall


def test_every_input_is_room_keyed_and_no_message_is_dead_lettered_by_two_jobs() -> None:
    assert all(TOPICS[name].key_field == "room_id" for name in INPUTS)
    assert not set(OWNED_INPUTS) & set(COUNTERS_OWNED)
    assert TOPICS[OUTPUT].event is RoomConsoleView and TOPICS[OUTPUT].config["cleanup.policy"] == "compact"
    job = console_job(hot_words=False)
    assert job.changelog == "console-changelog" and job.inputs == INPUTS


def test_the_last_view_of_each_room_is_the_whole_console_and_passes_its_schema() -> None:
    task = ConsoleTask(ConsoleCounters())
    wall = run(task, EVENTS, WALL)
    task.punctuate(wall + 1000, lambda: True)  # the throttled rest goes out
    last: dict[str, RoomConsoleView] = {}
    for topic, view in task.take_outputs():
        assert topic == OUTPUT and isinstance(view, RoomConsoleView)
        last[view.room_id] = view
    reference = ConsoleCounters()
    reference.apply_all(EVENTS)
    assert set(last) == set(reference.rooms)
    for room_id, view in last.items():
        assert view_body(view) == view_body(view_of(reference.snapshot(room_id), view.ts))
        again = decode(RoomConsoleView, encode(view), now_ms=view.ts)  # what the gateway reads
        assert again == view
        assert view.totals.impressions > view.totals.clicks > 0
        ratios = [r.ctr for r in view.skus.values()] + [r.conversion for r in view.skus.values()]
        assert all(x is None or round(x, 4) == x for x in ratios)  # display precision: fewer bytes a second


@settings(max_examples=40, deadline=None)
@given(gaps=st.lists(st.integers(min_value=0, max_value=2500), min_size=1, max_size=60))
def test_a_room_is_published_at_most_once_a_second_and_its_last_change_always_goes_out(gaps: list[int]) -> None:
    task = ConsoleTask(ConsoleCounters())
    wall = WALL
    sent: dict[str, list[int]] = {}
    chunks = [EVENTS[i::len(gaps)] for i in range(len(gaps))]
    for gap, chunk in zip(gaps, chunks, strict=True):
        wall += gap
        task.process(chunk, wall)
        task.punctuate(wall, lambda: True)
        for _, view in task.take_outputs():
            sent.setdefault(view.room_id, []).append(view.ts)
    task.punctuate(wall + 1000, lambda: True)
    for _, view in task.take_outputs():
        sent.setdefault(view.room_id, []).append(view.ts)
    assert not task.changed  # nothing left unpublished
    for times in sent.values():
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))


def test_a_restored_task_publishes_every_room_once_equal_to_the_uninterrupted_one() -> None:
    half = len(EVENTS) // 2
    task = ConsoleTask(ConsoleCounters())
    records: list[tuple[bytes, bytes | None]] = []
    wall = run(task, EVENTS[:half], WALL)
    records += task.take_changes()
    task.take_outputs()

    job = console_job(hot_words=False)
    restored = job.new_task(0, records)
    assert isinstance(restored, ConsoleTask)
    restored.punctuate(wall, lambda: True)
    first = {view.room_id for _, view in restored.take_outputs()}
    assert first == set(task.console.rooms)  # a crash inside the throttle second loses no view
    wall = run(restored, EVENTS[half:], wall + 1000)
    restored.punctuate(wall + 1000, lambda: True)
    views = {view.room_id: view for _, view in restored.take_outputs()}

    reference = ConsoleCounters()
    reference.apply_all(EVENTS)
    for room_id, view in views.items():
        want = view_body(view_of(reference.snapshot(room_id), view.ts))
        assert json.dumps(view_body(view), sort_keys=True) == json.dumps(want, sort_keys=True)


def test_hot_words_are_published_for_chat() -> None:
    job = console_job()
    task = job.new_task(0, [])
    assert isinstance(task, ConsoleTask)
    wall = run(task, EVENTS, WALL)
    task.punctuate(wall + 1000, lambda: True)
    views = [view for _, view in task.take_outputs()]
    assert any(view.hot_words for view in views)
    for view in views:
        counts = [n for _, n in view.hot_words]
        assert counts == sorted(counts, reverse=True)
