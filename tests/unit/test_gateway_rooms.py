"""Room state, coalescing, sequence numbers and resume (pure, property-tested)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Alert, RoomCounters, ScoredComment, SkuStock, StockUpdate
from schemas.base import Event
from ws_gateway.rooms import Channel, RoomState

T0 = 1_800_000_000_000


def counters(window_end: int, **values: Any) -> RoomCounters:
    return RoomCounters(room_id="r1", window_start=window_end - 1000, window_end=window_end, ts=window_end, **values)


def stock(sku: str, available: int, ts: int, reserved: int = 0) -> StockUpdate:
    return StockUpdate(room_id="r1", sku_id=sku, available=available, reserved=reserved, sold=0,
                       total=available + reserved, ts=ts)


def comment(i: int) -> ScoredComment:
    return ScoredComment(event_id=f"c{i}", room_id="r1", user_id="u", text=f"text {i}", label="positive",
                         score=0.5, confidence=0.9, ts=T0 + i)


def loads(raw: bytes) -> dict[str, Any]:
    return dict(orjson.loads(raw))


# ------------------------------------------------------------------------------------------- Channel


@given(published=st.integers(0, 40), history=st.integers(1, 16), last_seq=st.integers(0, 50))
def test_replay_is_exactly_the_missed_suffix_or_an_explicit_resync(published: int, history: int, last_seq: int) -> None:
    channel = Channel("r1", "host", "e1", history)
    for i in range(published):
        channel.publish({"n": i})
    replay = channel.replay("e1", last_seq)
    oldest_kept = max(1, published - history + 1)
    if last_seq > published or (last_seq < published and last_seq + 1 < oldest_kept):
        assert replay is None
    else:
        assert replay is not None
        assert [loads(m)["seq"] for m in replay] == list(range(last_seq + 1, published + 1))


def test_replay_from_another_epoch_is_a_resync() -> None:
    channel = Channel("r1", "host", "e1", 8)
    channel.publish({})
    assert channel.replay("e0", 0) is None and channel.replay(None, 0) is None
    assert channel.replay("e1", 1) == []


# ----------------------------------------------------------------------------------------- RoomState


def test_many_changes_between_flushes_become_one_update_per_audience() -> None:
    room = RoomState("r1", "e1")
    for i in range(50):
        room.apply(stock("sku-1", 100 - i, T0 + i))
        room.apply(counters(T0 + i * 1000, online=i))
    out = room.flush()
    assert set(out) == {"host", "viewer"}
    host, viewer = loads(out["host"]), loads(out["viewer"])
    assert host["seq"] == viewer["seq"] == 1
    assert host["counters"]["online"] == 49 and host["stock"]["sku-1"]["available"] == 51
    assert set(viewer) == {"type", "room", "epoch", "seq", "stock"}
    assert room.flush() == {} and not room.dirty


def test_host_only_changes_do_not_reach_or_number_the_viewer_channel() -> None:
    room = RoomState("r1", "e1")
    room.apply(counters(T0))
    room.apply(comment(1))
    room.apply(Alert(alert_id="a", room_id="r1", kind="k", level="info", message="m", ts=T0))
    out = room.flush()
    assert set(out) == {"host"} and room.channels["viewer"].seq == 0


def test_an_older_counter_window_or_stock_does_not_overwrite_a_newer_one() -> None:
    room = RoomState("r1", "e1")
    assert room.apply(counters(T0 + 2000, online=2))
    assert not room.apply(counters(T0 + 1000, online=1))
    assert room.apply(stock("s", 5, T0 + 10))
    assert not room.apply(stock("s", 9, T0 + 5))
    assert room.counters is not None and room.counters["online"] == 2 and room.stock["s"]["available"] == 5


def test_stock_inside_counters_fills_in_skus_and_keeps_the_known_price() -> None:
    room = RoomState("r1", "e1")
    room.apply(StockUpdate(room_id="r1", sku_id="s", available=5, reserved=0, sold=0, total=5, price_cents=990,
                           ts=T0))
    room.apply(RoomCounters(room_id="r1", window_start=T0, window_end=T0 + 1000, ts=T0 + 1000,
                            stock={"s": SkuStock(available=4, reserved=1, sold=0, total=5),
                                   "t": SkuStock(available=1, reserved=0, sold=0, total=1)}))
    assert room.stock["s"]["reserved"] == 1 and room.stock["s"]["price_cents"] == 990
    assert room.stock["t"]["available"] == 1


def test_a_repeated_alert_is_shown_once_and_bursts_are_capped_to_what_the_dashboard_keeps() -> None:
    room = RoomState("r1", "e1", recent_comments=5)
    alert = Alert(alert_id="a", room_id="r1", kind="k", level="info", message="m", ts=T0)
    assert room.apply(alert) and not room.apply(alert)
    for i in range(20):
        room.apply(comment(i))
    update = loads(room.flush()["host"])
    assert len(update["alerts"]) == 1
    assert [c["event_id"] for c in update["comments"]] == [f"c{i}" for i in range(15, 20)]


def _event(kind: int, i: int) -> Event:
    if kind == 0:
        return counters(T0 + i * 1000, online=i)
    if kind == 1:
        return stock(f"sku-{i % 3}", i, T0 + i)
    return comment(i)


@settings(max_examples=60)
@given(
    script=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["apply", "flush", "join"])), max_size=60),
    audience=st.sampled_from(["host", "viewer"]),
)
def test_a_client_that_joins_anytime_and_applies_updates_ends_with_the_final_snapshot(
    script: list[tuple[int, str]], audience: str
) -> None:
    """Snapshot + every later update, applied in sequence order, equals a fresh snapshot: no gap, no overlap."""
    room = RoomState("r1", "e1", recent_comments=200)
    client: dict[str, Any] | None = None

    def take(update: dict[str, Any]) -> None:
        assert client is not None and update["seq"] == client["seq"] + 1  # never a gap
        client["seq"] = update["seq"]
        if "counters" in update:
            client["counters"] = update["counters"]
        client["stock"].update(update.get("stock", {}))
        client["comments"] = client.get("comments", []) + update.get("comments", [])

    for i, (kind, step) in enumerate(script):
        if step == "apply":
            room.apply(_event(kind, i))
        elif step == "flush" or client is None:
            out = room.flush()
            if client is not None and audience in out:
                take(loads(out[audience]))
            if step == "join" and client is None:
                client = loads(room.snapshot(audience))  # type: ignore[arg-type]
    out = room.flush()
    if client is None:
        client = loads(room.snapshot(audience))  # type: ignore[arg-type]
    elif audience in out:
        take(loads(out[audience]))
    final = loads(room.snapshot(audience))  # type: ignore[arg-type]
    assert client["seq"] == final["seq"] and client["stock"] == final["stock"]
    if audience == "host":
        assert client["counters"] == final["counters"] and client["comments"] == final["comments"]
    else:
        assert "counters" not in final and "comments" not in final


@given(st.lists(st.floats(0, 0.5), min_size=1, max_size=100))
def test_flush_due_sends_at_most_once_per_interval_and_a_quiet_room_at_once(gaps: list[float]) -> None:
    room, now, sent_at = RoomState("r1", "e1"), 0.0, []
    for i, gap in enumerate(gaps):
        now += gap
        # ``last + interval`` rather than ``now - last``: the two can differ in the last bit, and the
        # gateway schedules its next flush at ``now + interval``
        quiet = not sent_at or now >= sent_at[-1] + 0.25
        room.apply(stock("s", i, T0 + i))
        if room.flush_due(now, 0.25):
            sent_at.append(now)
        else:
            assert not quiet  # a change after a quiet interval is never held back
    assert all(b >= a + 0.25 for a, b in itertools.pairwise(sent_at))
