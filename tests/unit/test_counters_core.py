"""The pure counters core (streams.counters.core) against brute-force models of its definitions."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import Event
from schemas.events import Comment, Like, OrderResult, Presence, RoomCounters, ScoredComment, StockUpdate
from streams.counters.core import CounterConfig, PartitionCounters

T0 = 1_700_000_000_000
WALL = 1_800_000_000_000  # a constant wall clock: no idle advance unless a test moves it
FAR = WALL + 10**9  # a tick this far on closes every window
#: Property tests share the 2 CPU cores with brokers: no per-example deadline.
relaxed = settings(deadline=None, max_examples=100)
CFG = CounterConfig(allowed_lateness_ms=200, idle_ms=500, heartbeat_timeout_ms=3_000, rolling_ms=5_000)
ROOMS = ["r1", "r2"]
USERS = ["u1", "u2", "u3", "u4"]


@st.composite
def events(draw: st.DrawFn, max_offset: int = 8_000) -> Event:
    kind = draw(st.sampled_from(["comment", "like", "presence", "order", "scored", "stock"]))
    room = draw(st.sampled_from(ROOMS))
    user = draw(st.sampled_from(USERS))
    ts = T0 + draw(st.integers(min_value=0, max_value=max_offset))
    n = draw(st.integers(min_value=0, max_value=10**6))
    if kind == "comment":
        return Comment(event_id=f"c{n}", room_id=room, user_id=user, text="hi", ts=ts)
    if kind == "like":
        return Like(event_id=f"l{n}", room_id=room, user_id=user, count=1 + n % 50, ts=ts)
    if kind == "presence":
        action = draw(st.sampled_from(["join", "heartbeat", "leave"]))
        return Presence(event_id=f"p{n}", room_id=room, user_id=user, action=action, ts=ts)
    if kind == "order":
        status = draw(st.sampled_from(["accepted", "rejected", "paid", "cancelled", "expired"]))
        return OrderResult(
            order_id=f"o{n}", room_id=room, sku_id="s1", user_id=user, status=status,
            quantity=1 + n % 3, price_cents=100 + n % 900, attempt_ts=ts, ts=ts,
        )
    if kind == "scored":
        label = draw(st.sampled_from(["positive", "neutral", "negative"]))
        score = {"positive": 0.5, "neutral": 0.0, "negative": -0.75}[label]
        return ScoredComment(
            event_id=f"s{n}", room_id=room, user_id=user, text="hi", label=label, score=score,
            confidence=0.9, ts=ts,
        )
    return StockUpdate(
        room_id=room, sku_id=draw(st.sampled_from(["s1", "s2"])), available=n % 7, reserved=n % 5,
        sold=n % 3, total=n % 7 + n % 5 + n % 3, ts=ts,
    )


streams = st.lists(events(), max_size=80)


def run(stream: Sequence[Event], cuts: Sequence[int] = (), cfg: CounterConfig = CFG) -> list[RoomCounters]:
    """Feed ``stream`` in batches split at ``cuts``, emitting after each batch, then close everything."""
    counters = PartitionCounters(cfg)
    out: list[RoomCounters] = []
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(stream)}), len(stream)]
    for lo, hi in itertools.pairwise(bounds):
        counters.apply_all(stream[lo:hi], WALL)
        out += counters.emit(WALL)
    out += counters.emit(FAR)
    return out


def late_flags(stream: Sequence[Event], cfg: CounterConfig = CFG) -> list[bool]:
    """Model: an event is late iff its window ended at or before (newest earlier ts OF ITS ROOM - lateness).

    Event time is per room: another room's events never make an event late."""
    flags: list[bool] = []
    newest: dict[str, int] = {}
    for e in stream:
        room: str = e.room_id  # type: ignore[attr-defined]
        end = e.ts - e.ts % cfg.window_ms + cfg.window_ms  # type: ignore[attr-defined]
        flags.append(room in newest and end <= newest[room] - cfg.allowed_lateness_ms)
        newest[room] = max(newest.get(room, e.ts), e.ts)  # type: ignore[attr-defined]
    return flags


def counted(stream: Sequence[Event]) -> set[int]:
    """Model: positions of the order answers that move a counter -- each order's first decision
    (accepted or rejected) and its first ``paid``, per room and (sku, user, order_id); re-sent answers
    count nothing.  (A SKU is on sale in one room, so the flash sale never answers one order in two.)"""
    seen: set[tuple[str, str, str, str, str]] = set()
    positions: set[int] = set()
    for i, e in enumerate(stream):
        if isinstance(e, OrderResult) and e.status in ("accepted", "rejected", "paid"):
            key = (e.room_id, "p" if e.status == "paid" else "a", e.sku_id, e.user_id, e.order_id)
            if key not in seen:
                seen.add(key)
                positions.add(i)
    return positions


def final(snapshots: Sequence[RoomCounters]) -> dict[str, RoomCounters]:
    return {s.room_id: s for s in snapshots}


@relaxed
@given(stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_cumulative_values_count_every_event_once_whatever_the_order_and_batching(
    stream: list[Event], cuts: list[int]
) -> None:
    last = final(run(stream, cuts))
    for room in ROOMS:
        mine = [e for e in stream if e.room_id == room]  # type: ignore[attr-defined]
        if not mine:
            continue
        snap = last[room]
        firsts = counted(stream)
        orders = [e for i, e in enumerate(stream) if i in firsts and e.room_id == room]  # type: ignore[attr-defined]
        accepted = [o for o in orders if o.status == "accepted"]
        paid = [o for o in orders if o.status == "paid"]
        assert snap.comments_total == sum(isinstance(e, Comment) for e in mine)
        assert snap.likes_total == sum(e.count for e in mine if isinstance(e, Like))
        assert snap.order_attempts_total == sum(o.status in ("accepted", "rejected") for o in orders)
        assert snap.orders_accepted_total == len(accepted)
        assert snap.units_total == sum(o.quantity for o in accepted)
        assert snap.gmv_reserved_cents_total == sum(o.quantity * o.price_cents for o in accepted)
        assert snap.gmv_paid_cents_total == sum(o.quantity * o.price_cents for o in paid)
        viewers = {e.user_id for e in mine if isinstance(e, Presence)}
        buyers = {o.user_id for o in accepted}
        assert snap.unique_viewers == len(viewers)
        assert snap.unique_buyers == len(buyers)
        assert snap.conversion_rate == (len(buyers) / len(viewers) if viewers else 0.0)


@relaxed
@given(stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_closed_windows_hold_exactly_the_on_time_events_and_late_ones_are_counted(
    stream: list[Event], cuts: list[int]
) -> None:
    snaps = run(stream, cuts)
    late = late_flags(stream)
    firsts = counted(stream)
    expected: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for i, (e, is_late) in enumerate(zip(stream, late, strict=True)):
        if is_late or isinstance(e, StockUpdate) or (isinstance(e, OrderResult) and i not in firsts):
            continue
        cell = expected[(e.room_id, e.ts - e.ts % 1000)]  # type: ignore[attr-defined]
        if isinstance(e, Comment):
            cell[0] += 1
        elif isinstance(e, Like):
            cell[1] += e.count
        elif isinstance(e, OrderResult) and e.status in ("accepted", "rejected"):
            cell[2] += 1
            cell[3] += e.status == "accepted"
    got = {(s.room_id, s.window_start): [s.comments, s.likes, s.order_attempts, s.orders_accepted]
           for s in snaps if any((s.comments, s.likes, s.order_attempts, s.orders_accepted))}
    assert got == {k: v for k, v in expected.items() if any(v)}
    last = final(snaps)
    for room in last:
        assert last[room].late_events == sum(
            is_late and not isinstance(e, StockUpdate) and e.room_id == room  # type: ignore[attr-defined]
            for e, is_late in zip(stream, late, strict=True)
        )


@relaxed
@given(stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_each_room_emits_each_window_once_in_event_time_order(stream: list[Event], cuts: list[int]) -> None:
    by_room: dict[str, list[int]] = defaultdict(list)
    for s in run(stream, cuts):
        assert s.window_end - s.window_start == 1000
        by_room[s.room_id].append(s.window_start)
    for starts in by_room.values():
        assert starts == sorted(set(starts))


@relaxed
@given(stream=streams)
def test_sentiment_is_the_rolling_60_s_mood_ending_at_the_window_end(stream: list[Event]) -> None:
    """The gauge's numbers: mean score and negative share of the room's scored comments in the 60 s
    of event time ending with the window (late ones included: the mood is not a per-window count).
    The test streams span 8 s, inside one mood window, so nothing is evicted."""
    scored = [e for e in stream if isinstance(e, ScoredComment)]
    for s in run(stream):
        last_second = (s.window_end - 1) // 1000
        mine = [c for c in scored if c.room_id == s.room_id and c.ts // 1000 <= last_second]
        if not mine:
            assert s.sentiment_avg is None and s.negative_share is None
        else:
            assert s.sentiment_avg is not None and s.negative_share is not None
            assert abs(s.sentiment_avg - sum(c.score for c in mine) / len(mine)) < 1e-9
            assert s.negative_share == sum(c.label == "negative" for c in mine) / len(mine)


@relaxed
@given(stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_stock_is_the_newest_update_of_each_sku(stream: list[Event], cuts: list[int]) -> None:
    last = final(run(stream, cuts))
    newest: dict[tuple[str, str], StockUpdate] = {}
    for e in stream:
        if isinstance(e, StockUpdate):
            key = (e.room_id, e.sku_id)
            if key not in newest or e.ts >= newest[key].ts:
                newest[key] = e
    for (room, sku), update in newest.items():
        if room in last:
            assert last[room].stock[sku].available == update.available
            assert last[room].stock[sku].sold == update.sold


@relaxed
@given(stream=st.lists(events(max_offset=12_000), max_size=80))
def test_online_viewers_follow_joins_leaves_and_heartbeat_timeouts(stream: list[Event]) -> None:
    """Model, for the events applied so far at each snapshot: online iff the newest join/heartbeat is
    newer than the newest leave and less than the timeout before the window's end."""
    stream = sorted(stream, key=lambda e: e.ts)  # type: ignore[attr-defined]
    counters = PartitionCounters(CFG)
    applied: list[Event] = []
    peak: dict[str, int] = defaultdict(int)
    for e in stream:
        counters.apply(e, WALL)
        applied.append(e)
        for snap in counters.emit(WALL):
            seen: dict[str, int] = {}
            left: dict[str, int] = {}
            for p in applied:
                if isinstance(p, Presence) and p.room_id == snap.room_id:
                    book = left if p.action == "leave" else seen
                    book[p.user_id] = max(book.get(p.user_id, p.ts), p.ts)
            expected = sum(
                1 for u, t in seen.items()
                if t > left.get(u, -1) and t + CFG.heartbeat_timeout_ms > snap.window_end
            )
            assert snap.online == expected
            peak[snap.room_id] = max(peak[snap.room_id], expected)
            assert snap.peak_online == peak[snap.room_id]


def test_a_viewer_is_online_until_the_heartbeat_timeout_and_back_after_a_new_join() -> None:
    counters = PartitionCounters(CFG)

    def presence(action: str, at: int) -> Presence:
        return Presence(event_id=f"p{at}", room_id="r1", user_id="u1", action=action, ts=T0 + at)  # type: ignore[arg-type]

    def online_at(at: int) -> int:
        counters.apply(Comment(event_id=f"c{at}", room_id="r1", user_id="u9", text="x", ts=T0 + at), WALL)
        return [s.online for s in counters.emit(WALL)][-1]

    counters.apply(presence("join", 0), WALL)
    assert online_at(1_500) == 1
    counters.apply(presence("heartbeat", 2_000), WALL)
    assert online_at(4_500) == 1  # heartbeat at 2.0 s keeps the viewer until 5.0 s
    assert online_at(6_500) == 0  # timed out
    counters.apply(presence("join", 7_000), WALL)
    counters.apply(presence("heartbeat", 6_900), WALL)  # out of order, older: changes nothing
    assert online_at(8_500) == 1
    counters.apply(presence("leave", 8_600), WALL)
    assert online_at(10_000) == 0


def test_rolling_values_sum_the_last_sixty_seconds_of_windows() -> None:
    cfg = CounterConfig(allowed_lateness_ms=0, idle_ms=500, rolling_ms=60_000)
    stream: list[Event] = [
        Comment(event_id=f"c{i}", room_id="r1", user_id="u1", text="x", ts=T0 + i * 10_000) for i in range(10)
    ]
    snaps = run(stream, cfg=cfg)
    assert [s.comments_60s for s in snaps] == [1, 2, 3, 4, 5, 6, 6, 6, 6, 6]
    assert [s.comments_total for s in snaps][-1] == 10


@settings(deadline=None, max_examples=60)
@given(
    stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6), crash=st.integers(0, 80),
)
def test_restoring_from_the_changelog_continues_exactly_as_if_nothing_happened(
    stream: list[Event], cuts: list[int], crash: int
) -> None:
    """A worker killed after committing batch k and replaced by one that reads the changelog emits
    the same snapshots from batch k on as a worker that never stopped."""
    bounds = [0, *sorted({c for c in [*cuts, crash] if 0 < c < len(stream)}), len(stream)]
    batches = [stream[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    split = bounds.index(crash) if crash in bounds else len(batches)

    steady = PartitionCounters(CFG)
    steady_out: list[RoomCounters] = []
    restored = PartitionCounters(CFG)
    changelog: list[tuple[bytes, bytes | None]] = []
    restored_out: list[RoomCounters] = []
    for i, batch in enumerate(batches):
        steady.apply_all(batch, WALL)
        snaps = steady.emit(WALL)
        if i >= split:
            steady_out += snaps
        if i == split:
            restored = PartitionCounters.restore(changelog, CFG, wall_ms=WALL)
        restored.apply_all(batch, WALL)
        snaps = restored.emit(WALL)
        changelog += restored.take_changes()
        if i >= split:
            restored_out += snaps
    steady_out += steady.emit(FAR)
    restored_out += restored.emit(FAR)

    def per_room(snaps: list[RoomCounters]) -> dict[str, list[RoomCounters]]:
        """Each room's snapshots in order (the order between rooms carries no meaning)."""
        rooms: dict[str, list[RoomCounters]] = defaultdict(list)
        for snap in snaps:
            rooms[snap.room_id].append(snap)
        return dict(rooms)

    assert per_room(restored_out) == per_room(steady_out)


def test_counted_answers_survive_compaction_in_chunks_and_a_resent_answer_counts_nothing_after_restore() -> None:
    """More answers than fit one changelog record, over several commits: every chunk has its own key
    (compaction keeps them all), and a restored worker counts none of them again."""
    from streams.counters.core import ORDERS_PER_RECORD

    n = ORDERS_PER_RECORD * 2 + 7
    answers = [
        OrderResult(order_id=f"o{i}", room_id="r1", sku_id="s1", user_id=f"u{i % 50}", status="accepted",
                    quantity=1, price_cents=100, attempt_ts=T0 + i, ts=T0 + i)
        for i in range(n)
    ]
    counters = PartitionCounters(CFG)
    changelog: list[tuple[bytes, bytes | None]] = []
    for lo in range(0, n, 1500):  # commits that cut chunks at other places than the record size
        counters.apply_all(answers[lo:lo + 1500], WALL)
        changelog += counters.take_changes()
    order_keys = [k for k, _ in changelog if k.startswith(b"o|")]
    assert len(order_keys) == len(set(order_keys)) >= 3
    compacted = list({k: v for k, v in changelog}.items())  # what log compaction leaves: the last per key
    restored = PartitionCounters.restore(compacted, CFG, wall_ms=WALL)
    assert restored.rooms["r1"].orders == counters.rooms["r1"].orders
    restored.apply_all(answers[::97], WALL)  # re-sent answers
    snap = final(restored.emit(FAR))["r1"]
    assert snap.order_attempts_total == n
    assert snap.orders_accepted_total == n


@relaxed
@given(stream=streams, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_live_snapshots_change_nothing_the_closed_windows_or_the_changelog_show(
    stream: list[Event], cuts: list[int]
) -> None:
    """A worker that also emits the open window's live snapshots (every call: live_ms 0) produces the
    very same closed-window snapshots and changelog records as one that does not."""
    cfg = CounterConfig(allowed_lateness_ms=200, idle_ms=500, heartbeat_timeout_ms=3_000, rolling_ms=5_000,
                        live_ms=0)
    plain, live = PartitionCounters(cfg), PartitionCounters(cfg)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(stream)}), len(stream)]
    plain_out: list[RoomCounters] = []
    live_out: list[RoomCounters] = []
    for lo, hi in itertools.pairwise(bounds):
        for counters, out in ((plain, plain_out), (live, live_out)):
            counters.apply_all(stream[lo:hi], WALL)
            out += counters.emit(WALL)
        live.emit_live(WALL)
        assert live.take_changes() == plain.take_changes()
    assert live_out + live.emit(FAR) == plain_out + plain.emit(FAR)


def test_a_like_shows_in_a_live_snapshot_before_its_window_closes() -> None:
    cfg = CounterConfig(live_ms=250)
    counters = PartitionCounters(cfg)
    counters.apply_all([Like(event_id="l1", room_id="r1", user_id="u1", count=3, ts=T0 + 10)], WALL)
    assert counters.emit(WALL) == []  # its window is still open
    (snap,) = counters.emit_live(WALL)
    assert (snap.likes_total, snap.likes, snap.likes_60s, snap.window_start) == (3, 3, 3, T0)
    assert counters.emit_live(WALL + 100) == []  # nothing changed (and within live_ms)
    counters.apply_all([Like(event_id="l2", room_id="r1", user_id="u1", count=1, ts=T0 + 20)], WALL + 100)
    assert counters.emit_live(WALL + 200) == []  # changed, but within live_ms of the last one
    (later,) = counters.emit_live(WALL + 250)
    assert later.likes_total == 4


def test_a_live_snapshot_sums_the_sixty_seconds_that_end_with_its_open_window() -> None:
    """Closed windows of 0..69 s hold one like each; the open window (70 s) holds two. The live
    snapshot's window is 70-71 s, so its 60 s are 11..70 s: 59 closed windows plus the open one."""
    cfg = CounterConfig(allowed_lateness_ms=0, idle_ms=500, rolling_ms=60_000, live_ms=0)
    counters = PartitionCounters(cfg)
    likes = [Like(event_id=f"l{i}", room_id="r1", user_id="u1", count=1, ts=T0 + i * 1_000) for i in range(70)]
    for like in likes:
        counters.apply_all([like], WALL)
        counters.emit(WALL)
    counters.apply_all([Like(event_id="open", room_id="r1", user_id="u1", count=2, ts=T0 + 70_000)], WALL)
    counters.emit(WALL)
    (snap,) = counters.emit_live(WALL + 1)
    assert snap.window_start == T0 + 70_000
    assert snap.likes_60s == 59 + 2
