"""The flash-sale bench's stage arithmetic (bench.flash_stages): stages add up, GC logs parse, stalls rank,
the brokers' CPU splits into JIT, VM thread and the rest."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bench.common import cpu_seconds, thread_cpu_seconds
from bench.flash_stages import (
    STAGES,
    Timeline,
    broker_cpu,
    gc_pauses,
    gc_summary,
    percentile,
    stage_summary,
    timelines_of,
    worst_seconds,
)

stamps = st.floats(min_value=1.7e12, max_value=1.8e12, allow_nan=False)
steps = st.floats(min_value=-5, max_value=500, allow_nan=False)


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    at = draw(stamps)
    marks = [at]
    for _ in range(4):
        marks.append(marks[-1] + draw(steps))
    return Timeline(*marks)


@given(timelines())
def test_the_stages_add_up_to_the_whole_latency(t: Timeline) -> None:
    stages = t.stages()
    assert list(stages) == list(STAGES)
    assert math.isclose(sum(stages.values()), t.total, abs_tol=1e-3)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200), st.floats(0, 1))
def test_a_percentile_is_one_of_the_values_and_grows_with_q(values: list[float], q: float) -> None:
    assert percentile(values, q) in values
    assert percentile(values, 0) == min(values)
    assert percentile(values, 1) == max(values)
    assert percentile(values, q) <= percentile(values, min(1.0, q + 0.1))


@given(st.lists(timelines(), min_size=1, max_size=50))
def test_the_summary_orders_p50_p99_max_for_every_stage_and_the_total(ts: list[Timeline]) -> None:
    summary = stage_summary(ts)
    assert set(summary) == {*STAGES, "total"}
    for row in summary.values():
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]


def test_the_worst_second_names_its_slowest_stage_and_the_gc_pauses_in_it() -> None:
    base = 1_800_000_000_000.0
    calm = [Timeline(base + i, base + i + 2, base + i + 5, base + i + 8, base + i + 20) for i in range(50)]
    stalled = [Timeline(base + 1000 + i, base + 1002 + i, base + 1005 + i, base + 1008 + i, base + 1300 + i)
               for i in range(50)]

    rows = worst_seconds(calm + stalled, gc_pauses=[(base + 1500, 40.0), (base + 9000, 99.0)])

    assert rows[0]["second"] == int((base + 1000) // 1000)
    assert rows[0]["worst_stage"] == "commit"
    assert rows[0]["gc_pause_ms"] == 40.0
    assert float(rows[0]["p99_ms"]) > float(rows[1]["p99_ms"])  # type: ignore[arg-type]


def test_gc_log_pauses_are_read_with_their_wall_clock_and_concurrent_phases_skipped() -> None:
    log = "\n".join([
        "[2026-11-30T15:42:59.488+0000][0.041s] Using G1",
        "[2026-11-30T15:42:59.899+0000][0.452s] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 3M->2M(66M) 7.795ms",
        "[2026-11-30T15:43:01.000+0000][1.553s] GC(1) Concurrent Mark Cycle 12.000ms",
        "[2026-11-30T15:43:02.250+0000][2.803s] GC(2) Pause Remark 20M->20M(66M) 1.500ms",
    ])

    pauses = gc_pauses(log)

    assert [ms for _, ms in pauses] == [7.795, 1.5]
    assert pauses[1][0] - pauses[0][0] == 2351.0
    assert gc_summary(pauses, pauses[0][0], pauses[0][0] + 1) == {"pauses": 1, "total_ms": 7.8, "max_ms": 7.8}


def test_orders_missing_an_observation_are_left_out_of_the_timelines() -> None:
    full = {"a": 1.0, "b": 1.0}
    joined = timelines_of(full, full, {"a": 3.0, "b": 3.0}, {"a": 4.0}, {"a": 5.0, "b": 6.0})
    assert joined == [Timeline(1.0, 1.0, 3.0, 4.0, 5.0)]


thread_names = st.sampled_from(["C1 CompilerThre", "C2 CompilerThre", "VM Thread", "data-plane-kafka-re", "main"])
seconds_so_far = st.floats(min_value=0, max_value=1e4, allow_nan=False)
one_broker = st.dictionaries(thread_names, seconds_so_far, max_size=5)


@given(st.lists(st.tuples(one_broker, one_broker, st.booleans()), min_size=1, max_size=3),
       st.floats(min_value=0.1, max_value=100), st.integers(min_value=1, max_value=64))
def test_broker_cpu_parts_never_exceed_the_whole_and_a_killed_broker_adds_nothing(
    brokers: list[tuple[dict[str, float], dict[str, float], bool]], seconds: float, cpus: int
) -> None:
    before = [start for start, _spent, _killed in brokers]
    after = [{} if killed else {name: start.get(name, 0.0) + spent.get(name, 0.0) for name in {*start, *spent}}
             for start, spent, killed in brokers]
    got = broker_cpu(before, after, seconds, cpus)
    assert got["jit_pct_of_machine"] + got["vm_thread_pct_of_machine"] <= got["pct_of_machine"] + 0.11
    alive = sum(v for (_b, a, killed) in brokers if not killed for v in a.values())
    assert math.isclose(got["cpu_s"], round(alive, 2), abs_tol=0.011)
    if all(killed for *_x, killed in brokers):
        assert got["cpu_s"] == 0.0


def test_broker_cpu_tells_the_jit_from_the_vm_thread_and_the_work() -> None:
    before = [{"C2 CompilerThre": 10.0, "VM Thread": 1.0, "data-plane-kafka-re": 5.0}]
    after = [{"C2 CompilerThre": 14.0, "C1 CompilerThre": 1.0, "VM Thread": 2.0, "data-plane-kafka-re": 9.0}]
    got = broker_cpu(before, after, seconds=10.0, cpus=2)
    assert got == {"cpu_s": 10.0, "pct_of_machine": 50.0, "jit_pct_of_machine": 25.0, "vm_thread_pct_of_machine": 5.0}


def test_thread_cpu_seconds_counts_this_threads_work_within_the_process_total_and_is_empty_for_a_gone_process() -> None:
    import os

    main_thread_before = max(thread_cpu_seconds(os.getpid()).values())
    deadline = cpu_seconds(os.getpid()) + 0.2
    while cpu_seconds(os.getpid()) < deadline:  # this (main) thread burns 0.2 s of CPU
        sum(range(10_000))
    threads = thread_cpu_seconds(os.getpid())
    assert max(threads.values()) >= main_thread_before + 0.18  # clock ticks are 10 ms
    # threads that already ended count in the process's total but are no longer listed
    assert sum(threads.values()) <= cpu_seconds(os.getpid()) + 0.02
    assert thread_cpu_seconds(2**22 + 17) == {}  # above Linux's largest pid: no such process
