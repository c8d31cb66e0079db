"""Live counters of the rooms of one partition: the pure core of the counters job.

Plain data in, plain data out, no I/O and no clock: the worker passes the wall time in.  The
worker owns one :class:`PartitionCounters` per input partition (all room-keyed topics are
co-partitioned, so a room lives in exactly one of them), feeds it decoded events, asks it for the
snapshots of the windows that closed, and writes :meth:`PartitionCounters.take_changes` to the
changelog in the same Kafka transaction as the snapshots and the input offsets.

Definitions (what the dashboard shows):

- windowed values (``comments``, ``likes``, ``order_attempts``, ``orders_accepted``, sentiment) count
  the events whose event time falls in the 1-s window and that arrived before it closed;
- ``*_total`` values count every event since the stream started, late ones included;
- ``*_60s`` values sum the closed windows of the last 60 s of event time, this one included;
- a viewer is online from a join or heartbeat until a later leave or ``heartbeat_timeout_ms`` of
  event time without a heartbeat; ``online`` is evaluated at the window's end, ``peak_online`` is
  the largest ``online`` of any snapshot so far; ``unique_viewers`` counts distinct users seen in
  presence events;
- an order attempt is an ``accepted`` or ``rejected`` result; a buyer is a user with an accepted
  order; ``gmv_reserved`` sums ``price_cents * quantity`` of accepted results and ``gmv_paid`` of
  ``paid`` results; conversion is ``unique_buyers / unique_viewers``; GPM is paid GMV (cents) per
  1,000 unique viewers;
- ``late_events`` counts, since the stream started, events (stock updates aside) whose window had
  already closed when they arrived;
- ``stock`` holds the newest update (by event time) of each SKU of the room;
- ``sentiment_avg`` and ``negative_share`` are the room's **mood over the rolling 60 s** of event
  time ending at the window's end: mean score and negative share of the scored comments, kept by
  :func:`sentiment.mood.add_to_window` and read by :func:`sentiment.mood.window_mood` with the
  alerts' window, the same functions the sentiment job's negative-opinion alerts use (a 1-s
  window read 0.00 between comments while an alert said 30 % of the minute was negative).  Its
  buckets live in the room state, so a restore from the changelog continues the same mood.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from schemas.base import Event
from schemas.events import (
    Comment,
    Like,
    OrderResult,
    Presence,
    RoomCounters,
    ScoredComment,
    SkuStock,
    StockUpdate,
)
from sentiment.mood import MoodPolicy, add_to_window, window_mood
from streams.counters.windows import (
    DEFAULT_ALLOWED_LATENESS_MS,
    DEFAULT_IDLE_MS,
    NO_TIME,
    Watermark,
    window_start,
)


@dataclass(frozen=True)
class CounterConfig:
    """Knobs of the counters; the defaults are the documented behaviour."""

    window_ms: int = 1000
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    idle_ms: int = DEFAULT_IDLE_MS
    heartbeat_timeout_ms: int = 90_000
    rolling_ms: int = 60_000
    #: How often (wall time) a changed room's OPEN window is shown on ``room-counters-live``.
    live_ms: int = 250


class WindowAgg(msgspec.Struct, array_like=True):
    """What one room did in one window."""

    comments: int = 0
    likes: int = 0
    order_attempts: int = 0
    orders_accepted: int = 0
    gmv_paid_cents: int = 0
    sentiment_sum: float = 0.0
    sentiment_n: int = 0
    negative_n: int = 0


class StockEntry(msgspec.Struct, array_like=True):
    available: int
    reserved: int
    sold: int
    total: int
    ts: int


class RoomState(msgspec.Struct, kw_only=True):
    """Everything about a room except its viewers and buyers; one changelog record per room."""

    room_id: str
    comments_total: int = 0
    likes_total: int = 0
    order_attempts_total: int = 0
    orders_accepted_total: int = 0
    units_total: int = 0
    gmv_reserved_cents_total: int = 0
    gmv_paid_cents_total: int = 0
    late_events: int = 0
    peak_online: int = 0
    unique_viewers: int = 0
    unique_buyers: int = 0
    windows: dict[int, WindowAgg] = msgspec.field(default_factory=dict)
    #: (window start, comments, likes, paid GMV) of closed windows inside the rolling range.
    rolling: list[tuple[int, int, int, int]] = msgspec.field(default_factory=list)
    stock: dict[str, StockEntry] = msgspec.field(default_factory=dict)
    expiry_clock: int = NO_TIME
    last_emitted_end: int = NO_TIME
    #: The room's own watermark (largest event time seen, and the closing mark): event time is per
    #: room, so one room's future-stamped event cannot close another room's windows.
    wm_event_max: int = NO_TIME
    wm_value: int = NO_TIME
    #: A late event or a stock update arrived that no snapshot has shown yet.
    unshown: bool = False
    #: The rolling mood's per-second buckets ({second: [negatives, comments, score sum]}) and the
    #: newest scored comment's ts (sentiment.mood.add_to_window): changelogged like the rest.
    mood: dict[int, list[float]] = msgspec.field(default_factory=dict)
    mood_newest_ts: int = 0


class Viewer(msgspec.Struct, array_like=True):
    """Latest join/heartbeat and latest leave of one viewer in one room (event time)."""

    seen: int = NO_TIME
    left: int = NO_TIME


@dataclass
class Room:
    """A room's persisted state plus the indexes rebuilt from it (online set, expiry heap)."""

    state: RoomState
    watermark: Watermark
    viewers: dict[str, Viewer] = field(default_factory=dict)
    buyers: set[str] = field(default_factory=set)
    #: Answers already counted, as ``(kind, sku, user, order_id)`` (kind "a" for the decision on an
    #: attempt, "p" for the payment): a re-sent order or payment gets its first answer again, and the
    #: counters must count that answer once.
    orders: set[tuple[str, str, str, str]] = field(default_factory=set)
    online: dict[str, int] = field(default_factory=dict)  # user -> last seen, only if online
    expiry: list[tuple[int, str]] = field(default_factory=list)  # heap of (seen, user), lazily pruned
    #: What the last live snapshot showed (see :meth:`PartitionCounters.emit_live`) and when: runtime
    #: only, never changelogged, because live snapshots change no state.
    live_mark: tuple[int, ...] = ()
    live_wall: int = NO_TIME

    def refresh_viewer(self, user: str, viewer: Viewer, timeout_ms: int) -> None:
        """Put ``user`` in or out of the online set after its record changed."""
        on = viewer.seen > viewer.left and viewer.seen + timeout_ms > self.state.expiry_clock
        if on:
            if self.online.get(user) != viewer.seen:
                self.online[user] = viewer.seen
                heapq.heappush(self.expiry, (viewer.seen, user))
        else:
            self.online.pop(user, None)

    def expire(self, now: int, timeout_ms: int) -> None:
        """Drop viewers whose last heartbeat is ``timeout_ms`` or more before ``now`` (event time)."""
        if now > self.state.expiry_clock:
            self.state.expiry_clock = now
        clock = self.state.expiry_clock
        heap = self.expiry
        while heap and heap[0][0] + timeout_ms <= clock:
            seen, user = heapq.heappop(heap)
            if self.online.get(user) == seen:
                del self.online[user]


#: Answers that move a counter, and what they count once per order (sku, user, order_id): the decision
#: (accepted or rejected: an attempt) and the payment.  A re-sent order or payment gets its first
#: answer again from the flash sale; counting it again would inflate attempts, orders and GMV.
_COUNTED_ONCE = {"accepted": "a", "rejected": "a", "paid": "p"}

# Changelog keys: room ids and user ids never contain "|" (see schemas.base.Id).
_ROOM, _VIEWER, _BUYER, _ORDER = "r|", "v|", "b|", "o|"
_enc = msgspec.msgpack.Encoder()
_room_dec = msgspec.msgpack.Decoder(RoomState)
_viewer_dec = msgspec.msgpack.Decoder(Viewer)
_orders_dec = msgspec.msgpack.Decoder(list[tuple[str, str, str, str]])

#: Counted answers per changelog record.  Why chunks: one record per counted answer cost a produce
#: call and a broker write per order, about a third of the job's hot-path cost in an order-heavy
#: mix; a chunk of a commit's new answers costs one.  Bounded so a record stays far below Kafka's
#: message size limit (an answer is under 200 bytes: ids are at most 64 characters).
ORDERS_PER_RECORD = 2000


def orders_record_key(room_id: str, first: tuple[str, str, str, str]) -> bytes:
    """The changelog key of a chunk of counted answers, named after its first answer.

    Unique for ever: an answer is counted (and put in a chunk) once, so no later chunk can start with
    it and compaction never replaces a chunk.  An aborted transaction's chunk is discarded by Kafka,
    and the replay writes its answers again under a key no committed chunk has."""
    return f"{_ORDER}{room_id}|{'/'.join(first)}".encode()


class PartitionCounters:
    """The counters of every room of one partition; each room keeps its own watermark."""

    def __init__(self, config: CounterConfig | None = None) -> None:
        self.config = config or CounterConfig()
        self.rooms: dict[str, Room] = {}
        self._dirty_rooms: set[str] = set()
        self._dirty_viewers: set[tuple[str, str]] = set()
        self._new_buyers: set[tuple[str, str]] = set()
        self._new_orders: dict[str, list[tuple[str, str, str, str]]] = {}
        self.mood_window_ms = MoodPolicy().window_ms
        self._apply: dict[type[Event], Callable[[Room, Event], None]] = {
            Comment: self._comment,
            Like: self._like,
            Presence: self._presence,
            OrderResult: self._order_result,
            ScoredComment: self._scored,
            StockUpdate: self._stock,
        }

    # ---- applying events -------------------------------------------------------------------

    def room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = Room(
                RoomState(room_id=room_id), Watermark(self.config.allowed_lateness_ms, self.config.idle_ms)
            )
        return room

    def apply(self, event: Event, wall_ms: int) -> None:
        """Fold one event into its room. Raises KeyError for event types the counters ignore."""
        handler = self._apply[type(event)]
        room_id: str = event.room_id  # type: ignore[attr-defined]
        room = self.rooms.get(room_id) or self.room(room_id)
        handler(room, event)
        self._dirty_rooms.add(room_id)
        room.watermark.observe(event.ts, wall_ms)  # type: ignore[attr-defined]

    def apply_all(self, events: Iterable[Event], wall_ms: int) -> None:
        """:meth:`apply` for a batch, with the per-event lookups hoisted (this is the hot path)."""
        handlers, rooms, dirty = self._apply, self.rooms, self._dirty_rooms
        for event in events:
            room_id: str = event.room_id  # type: ignore[attr-defined]
            room = rooms.get(room_id)
            if room is None:
                room = self.room(room_id)
            handlers[type(event)](room, event)
            dirty.add(room_id)
            ts: int = event.ts  # type: ignore[attr-defined]
            wm = room.watermark
            if ts > wm.event_max:  # Watermark.observe, inlined: most events move their room's max
                wm.event_max = ts
                wm.wall_at_progress = wall_ms
                mark = ts - wm.allowed_lateness_ms
                if mark > wm.value:
                    wm.value = mark

    def _window(self, room: Room, ts: int) -> WindowAgg | None:
        """The open window holding ``ts``, or None (and one more late event) if it is closed."""
        size = self.config.window_ms
        start = ts - ts % size
        if start + size <= room.watermark.value:
            room.state.late_events += 1
            room.state.unshown = True
            return None
        agg = room.state.windows.get(start)
        if agg is None:
            agg = room.state.windows[start] = WindowAgg()
        return agg

    def _comment(self, room: Room, event: Event) -> None:
        assert isinstance(event, Comment)
        room.state.comments_total += 1
        agg = self._window(room, event.ts)
        if agg is not None:
            agg.comments += 1

    def _like(self, room: Room, event: Event) -> None:
        assert isinstance(event, Like)
        room.state.likes_total += event.count
        agg = self._window(room, event.ts)
        if agg is not None:
            agg.likes += event.count

    def _scored(self, room: Room, event: Event) -> None:
        assert isinstance(event, ScoredComment)
        state = room.state
        state.mood_newest_ts, _ = add_to_window(
            state.mood, state.mood_newest_ts, event.ts, event.label == "negative", event.score, self.mood_window_ms
        )
        agg = self._window(room, event.ts)
        if agg is not None:
            agg.sentiment_sum += event.score
            agg.sentiment_n += 1
            agg.negative_n += event.label == "negative"

    def _presence(self, room: Room, event: Event) -> None:
        assert isinstance(event, Presence)
        self._window(room, event.ts)  # presence has no windowed value, but a late one is counted
        user = event.user_id
        viewer = room.viewers.get(user)
        if viewer is None:
            viewer = room.viewers[user] = Viewer()
            room.state.unique_viewers += 1
        if event.action == "leave":
            if event.ts > viewer.left:
                viewer.left = event.ts
        elif event.ts > viewer.seen:
            viewer.seen = event.ts
        room.refresh_viewer(user, viewer, self.config.heartbeat_timeout_ms)
        self._dirty_viewers.add((room.state.room_id, user))

    def _order_result(self, room: Room, event: Event) -> None:
        assert isinstance(event, OrderResult)
        state = room.state
        status = event.status
        kind = _COUNTED_ONCE.get(status)
        if kind is not None:
            seen = (kind, event.sku_id, event.user_id, event.order_id)
            if seen in room.orders:
                self._window(room, event.ts)  # a repeat answer counts nothing, but lateness is still counted
                return
            room.orders.add(seen)
            new = self._new_orders.get(state.room_id)
            if new is None:
                new = self._new_orders[state.room_id] = []
            new.append(seen)
        if status == "accepted" or status == "rejected":
            state.order_attempts_total += 1
            agg = self._window(room, event.ts)
            if agg is not None:
                agg.order_attempts += 1
            if status == "accepted":
                state.orders_accepted_total += 1
                state.units_total += event.quantity
                state.gmv_reserved_cents_total += event.price_cents * event.quantity
                if agg is not None:
                    agg.orders_accepted += 1
                if event.user_id not in room.buyers:
                    room.buyers.add(event.user_id)
                    state.unique_buyers += 1
                    self._new_buyers.add((state.room_id, event.user_id))
        elif status == "paid":
            gmv = event.price_cents * event.quantity
            state.gmv_paid_cents_total += gmv
            agg = self._window(room, event.ts)
            if agg is not None:
                agg.gmv_paid_cents += gmv
        else:  # cancelled, expired, payment_refused: no counter moves, but lateness is still counted
            self._window(room, event.ts)

    def _stock(self, room: Room, event: Event) -> None:
        assert isinstance(event, StockUpdate)
        entry = room.state.stock.get(event.sku_id)
        if entry is None or event.ts >= entry.ts:
            room.state.stock[event.sku_id] = StockEntry(
                event.available, event.reserved, event.sold, event.total, event.ts
            )
            room.state.unshown = True

    # ---- closing windows ---------------------------------------------------------------------

    def emit(self, wall_ms: int) -> list[RoomCounters]:
        """Snapshots of every window that closed since the last call, oldest first per room.

        A room gets one snapshot per closed window that had events, and one for the latest closed
        window while it has viewers online (a watched but quiet room still ticks every second) or
        news that no window carries (late events, stock updates).
        """
        size = self.config.window_ms
        out: list[RoomCounters] = []
        for room in self.rooms.values():
            room.watermark.tick(wall_ms)
            wm = room.watermark.value
            latest_end = window_start(wm, size)
            state = room.state
            if state.last_emitted_end >= latest_end:
                continue
            for start in sorted(start for start in state.windows if start + size <= wm):
                out.append(self._snapshot(room, start, state.windows.pop(start), wall_ms))
            if state.last_emitted_end < latest_end and (room.online or state.unshown):
                room.expire(latest_end, self.config.heartbeat_timeout_ms)
                self._dirty_rooms.add(state.room_id)
                if room.online or state.unshown:
                    out.append(self._snapshot(room, latest_end - size, WindowAgg(), wall_ms))
        return out

    def emit_live(self, wall_ms: int) -> list[RoomCounters]:
        """Snapshots of each changed room's OPEN window, at most one per room per ``live_ms`` of wall time.

        Why: a closed window is shown only when the watermark passes its end plus the allowed
        lateness, so a like waits up to 1.1 s before the host sees it.  A live snapshot carries the
        totals so far (and the open window's partial counts) within ``live_ms``.  It READS the state
        and changes nothing (no expiry, no peak, no rolling list), so the closed-window snapshots,
        the changelog and a restore are exactly what they were without it; ``online`` counts the
        viewers not yet expired (the closed window's snapshot applies the heartbeat timeout)."""
        size, live_ms = self.config.window_ms, self.config.live_ms
        out: list[RoomCounters] = []
        for room in self.rooms.values():
            if wall_ms - room.live_wall < live_ms:
                continue
            state = room.state
            mark = (state.comments_total, state.likes_total, state.order_attempts_total, state.gmv_paid_cents_total,
                    state.unique_viewers, len(room.online), len(state.mood), state.mood_newest_ts,
                    state.late_events, len(state.stock))
            if mark == room.live_mark:
                continue
            room.live_mark, room.live_wall = mark, wall_ms
            newest = room.watermark.event_max
            start = max(newest - newest % size, state.last_emitted_end)
            agg = state.windows.get(start) or WindowAgg()
            out.append(self._counters_of(room, start, agg, len(room.online), state.rolling, wall_ms, partial=True))
        return out

    def _snapshot(self, room: Room, start: int, agg: WindowAgg, wall_ms: int) -> RoomCounters:
        state = room.state
        end = start + self.config.window_ms
        room.expire(end, self.config.heartbeat_timeout_ms)
        online = len(room.online)
        if online > state.peak_online:
            state.peak_online = online
        rolling = state.rolling
        if agg.comments or agg.likes or agg.gmv_paid_cents:
            rolling.append((start, agg.comments, agg.likes, agg.gmv_paid_cents))
        horizon = end - self.config.rolling_ms
        while rolling and rolling[0][0] < horizon:
            rolling.pop(0)
        state.last_emitted_end = end
        state.unshown = False
        self._dirty_rooms.add(state.room_id)
        return self._counters_of(room, start, agg, online, rolling, wall_ms, partial=False)

    def _counters_of(
        self, room: Room, start: int, agg: WindowAgg, online: int, rolling: list[tuple[int, int, int, int]],
        wall_ms: int, *, partial: bool,
    ) -> RoomCounters:
        """The snapshot of window ``start``; ``partial`` (a live one) adds the open window to the
        rolling sums, which only closed windows are in."""
        state = room.state
        end = start + self.config.window_ms
        mood = window_mood(state.mood, end - 1, self.mood_window_ms)
        extra = (agg.comments, agg.likes, agg.gmv_paid_cents) if partial else (0, 0, 0)
        horizon = end - self.config.rolling_ms
        comments_60s, likes_60s, gmv_60s = extra
        for opened, comments, likes, gmv in rolling:  # one pass (this runs for every snapshot)
            if opened >= horizon:
                comments_60s += comments
                likes_60s += likes
                gmv_60s += gmv
        viewers = state.unique_viewers
        return RoomCounters(
            room_id=state.room_id,
            window_start=start,
            window_end=end,
            online=online,
            peak_online=max(state.peak_online, online),
            unique_viewers=viewers,
            comments=agg.comments,
            likes=agg.likes,
            comments_total=state.comments_total,
            likes_total=state.likes_total,
            comments_60s=comments_60s,
            likes_60s=likes_60s,
            order_attempts=agg.order_attempts,
            order_attempts_total=state.order_attempts_total,
            orders_accepted=agg.orders_accepted,
            orders_accepted_total=state.orders_accepted_total,
            units_total=state.units_total,
            gmv_reserved_cents_total=state.gmv_reserved_cents_total,
            gmv_paid_cents_total=state.gmv_paid_cents_total,
            gmv_paid_cents_60s=gmv_60s,
            unique_buyers=state.unique_buyers,
            conversion_rate=state.unique_buyers / viewers if viewers else 0.0,
            gpm_cents=state.gmv_paid_cents_total * 1000 / viewers if viewers else 0.0,
            sentiment_avg=mood.score_avg,
            negative_share=mood.negative_share,
            late_events=state.late_events,
            stock={
                sku: SkuStock(available=e.available, reserved=e.reserved, sold=e.sold, total=e.total)
                for sku, e in state.stock.items()
            },
            ts=wall_ms,
        )

    # ---- changelog -----------------------------------------------------------------------------

    def take_changes(self) -> list[tuple[bytes, bytes]]:
        """(key, value) records that bring a changelog up to date, one per changed key; clears them."""
        changes: list[tuple[bytes, bytes]] = []
        for room_id in self._dirty_rooms:
            room = self.rooms[room_id]
            room.state.wm_event_max, room.state.wm_value = room.watermark.event_max, room.watermark.value
            changes.append(((_ROOM + room_id).encode(), _enc.encode(room.state)))
        for room_id, user in self._dirty_viewers:
            viewer = self.rooms[room_id].viewers[user]
            changes.append((f"{_VIEWER}{room_id}|{user}".encode(), _enc.encode(viewer)))
        for room_id, user in self._new_buyers:
            changes.append((f"{_BUYER}{room_id}|{user}".encode(), b"1"))
        for room_id, orders in self._new_orders.items():
            for i in range(0, len(orders), ORDERS_PER_RECORD):
                chunk = orders[i:i + ORDERS_PER_RECORD]
                changes.append((orders_record_key(room_id, chunk[0]), _enc.encode(chunk)))
        self._dirty_rooms.clear()
        self._dirty_viewers.clear()
        self._new_buyers.clear()
        self._new_orders.clear()
        return changes

    @classmethod
    def restore(
        cls, records: Iterable[tuple[bytes, bytes | None]], config: CounterConfig | None = None,
        wall_ms: int = 0,
    ) -> PartitionCounters:
        """Rebuild the counters from a changelog read in order (later records win)."""
        latest: dict[bytes, bytes] = {}
        for raw, value in records:
            if value is None:
                latest.pop(raw, None)
            else:
                latest[raw] = value
        counters = cls(config)
        viewers: list[tuple[str, str, Viewer]] = []
        for raw_key, value in latest.items():
            key = raw_key.decode()
            if key.startswith(_ROOM):
                state = _room_dec.decode(value)
                room = counters.room(state.room_id)
                room.state = state
                room.watermark.event_max, room.watermark.value = state.wm_event_max, state.wm_value
                room.watermark.wall_at_progress = wall_ms
            elif key.startswith(_VIEWER):
                room_id, user = key[len(_VIEWER):].split("|", 1)
                viewers.append((room_id, user, _viewer_dec.decode(value)))
            elif key.startswith(_BUYER):
                room_id, user = key[len(_BUYER):].split("|", 1)
                counters.room(room_id).buyers.add(user)
            elif key.startswith(_ORDER):
                room_id = key[len(_ORDER):].split("|", 1)[0]
                counters.room(room_id).orders.update(_orders_dec.decode(value))
        timeout = counters.config.heartbeat_timeout_ms
        for room_id, user, viewer in viewers:
            room = counters.room(room_id)
            room.viewers[user] = viewer
            room.refresh_viewer(user, viewer, timeout)
        return counters
