"""The console in the gateway's room state: whole in a host's snapshot, only the change in each update,
never to viewers; a host that follows snapshot + updates (or resumes) holds the latest view exactly."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.console import RoomConsoleView, apply_delta, view_body
from simulator.config import ScenarioConfig
from streams.counters.console import ConsoleCounters, view_of
from tests.console_stream import decided_stream
from ws_gateway.kafka_io import OUTPUT_TOPICS
from ws_gateway.rooms import RoomState

WALL = 1_900_000_000_000


def views() -> list[RoomConsoleView]:
    """One room's console as the job publishes it, once a simulated second of events."""
    d = decided_stream(ScenarioConfig(seed=3, rooms=1, duration_s=180, peak_viewers=150, stock=30, buyers=100))
    console = ConsoleCounters()
    room = next(iter(d.truth.rooms))
    out: list[RoomConsoleView] = []
    events = [e for e in d.room_keyed if type(e) in console.event_types]
    for i in range(0, len(events), 40):
        console.apply_all(events[i:i + 40])
        out.append(view_of(console.snapshot(room), WALL + i))
    return out


VIEWS = views()


def loads(raw: bytes) -> dict[str, Any]:
    return dict(orjson.loads(raw))


def test_the_gateway_reads_the_console_topic() -> None:
    assert "room-console" in OUTPUT_TOPICS


@settings(max_examples=30, deadline=None)
@given(flush_after=st.lists(st.booleans(), min_size=len(VIEWS), max_size=len(VIEWS)),
       join_at=st.integers(0, len(VIEWS) - 1))
def test_a_host_following_updates_holds_the_latest_view_and_viewers_never_see_it(
    flush_after: list[bool], join_at: int
) -> None:
    state = RoomState("r1", "e1")
    host: dict[str, Any] | None = None
    for i, (view, flush) in enumerate(zip(VIEWS, flush_after, strict=True)):
        assert state.apply(view)
        if i == join_at:  # the server flushes first, then sends the snapshot
            for audience, raw in state.flush().items():
                assert audience == "host" or "console" not in loads(raw)
            snap = loads(state.snapshot("host"))
            host = snap["console"]
            assert host == view_body(view)
            assert "console" not in loads(state.snapshot("viewer"))
        elif flush:
            for audience, raw in state.flush().items():
                body = loads(raw)
                if audience == "viewer":
                    assert "console" not in body
                elif host is not None and "console" in body:
                    host = apply_delta(host, body["console"])
    for audience, raw in state.flush().items():
        body = loads(raw)
        assert audience == "host" or "console" not in body
        if audience == "host" and host is not None and "console" in body:
            host = apply_delta(host, body["console"])
    assert host == view_body(VIEWS[-1])


def test_updates_carry_fewer_bytes_than_the_whole_view_and_do_not_grow_with_the_stream() -> None:
    state = RoomState("r1", "e1")
    state.apply(VIEWS[0])
    state.flush()
    sent: list[int] = []
    whole: list[int] = []
    for view in VIEWS[1:]:
        state.apply(view)
        sent.append(len(orjson.dumps(loads(state.flush()["host"])["console"])))
        whole.append(len(orjson.dumps(view_body(view))))
    assert sum(sent) * 2 < sum(whole), (sum(sent), sum(whole))
    third = len(sent) // 3
    early, late = sum(sent[:third]) / third, sum(sent[-third:]) / third
    assert whole[-1] > 1.5 * whole[0] and late < 1.5 * early, (early, late, whole[0], whole[-1])


def test_a_host_resuming_from_history_gets_the_deltas_it_missed_in_order() -> None:
    state = RoomState("r1", "e1", history=1000)
    state.apply(VIEWS[0])
    state.flush()
    snap = loads(state.snapshot("host"))
    for view in VIEWS[1:]:
        state.apply(view)
        state.flush()
    missed = state.channels["host"].replay("e1", snap["seq"])
    assert missed is not None
    host = snap["console"]
    for raw in missed:
        body = loads(raw)
        if "console" in body:
            host = apply_delta(host, body["console"])
    assert host == view_body(VIEWS[-1])


def test_an_unchanged_view_sends_nothing_new() -> None:
    state = RoomState("r1", "e1")
    state.apply(VIEWS[5])
    state.flush()
    again = VIEWS[5]
    state.apply(again)
    out = state.flush()
    assert "console" not in loads(out.get("host", b"{}"))
