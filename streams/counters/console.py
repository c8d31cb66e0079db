"""The streamer's console numbers, per room: the pure core, no I/O and no clock.

What the host's live screen shows beyond the 1-second tiles of :mod:`streams.counters.core`: the
product funnel per SKU, where viewers came from, new followers, shares, average watch time, trends
per minute over the WHOLE stream, and the key events (markers) to draw on those trends, plus the
headline metrics against the room's own benchmark.  The runtime feeds every room-keyed event of a
partition to :meth:`ConsoleCounters.apply` (including the ``room-counters`` snapshots, for online,
and the room's latest ``room-benchmarks`` record), and sends :func:`delta` of two consecutive
:meth:`ConsoleCounters.snapshot` calls to the dashboard.

Definitions:

- per SKU: ``impressions`` and ``clicks`` count ProductImpression / ProductClick events;
  ``ctr = clicks / impressions``; ``attempts`` are ``accepted`` + ``rejected`` order results and
  ``paid`` the ``paid`` ones, each counted once per (SKU, user, order_id) as the live counters do (a
  re-sent order or payment gets its first answer again); ``gmv_paid_cents`` sums the paid ones'
  ``price_cents * quantity``; ``conversion = paid / clicks`` (paid orders per product tap);
- ``entries`` are joins, split by traffic source (``unknown`` when the client sent none) and by
  follower / non-follower / unknown;
- ``follows`` and ``shares`` count Follow / Share events;
- watch time is sum(leave ts) - sum(join ts) + now x (joins - leaves), "now" being the newest
  viewer event time of the room: open visits count up to now, and the figure does not depend on
  the order events arrive in; ``avg_watch_ms`` divides it by the distinct viewers who joined;
- the stream's span runs from its first to its newest viewer event (presence, chat, likes, product
  showings and taps, follows, shares);
- each minute of that span has a row (dense, quiet minutes are zeros); ``online`` is the highest
  ``online`` of the minute's room-counters snapshots;
- markers: ``sale_open``, ``sale_close``, ``restock``, ``pin``, ``unpin`` (host actions),
  ``sold_out`` (the first stock update of a SKU with nothing available after its last open or
  restock), ``alert`` (alerts), and ``online_peak`` (where the highest online so far was first
  reached).  At most :data:`MAX_MARKERS` are kept; beyond that the oldest alert markers go first.

Checkpointing, like the live counters: :meth:`ConsoleCounters.take_changes` gives one changelog
record per changed room (:class:`RoomConsole`, small: counts, the per-minute rows, the markers) plus
one tiny record per new member of a room's sets (a viewer who joined, a buyer, an answer counted),
so no record grows with the audience; :meth:`ConsoleCounters.restore` rebuilds the state from them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.base import Event
from schemas.console import RoomConsoleView, apply_delta, delta, round_for_display
from schemas.events import (
    Alert,
    Comment,
    Follow,
    HostAction,
    Like,
    OrderResult,
    Presence,
    ProductClick,
    ProductImpression,
    RoomBenchmark,
    RoomCounters,
    Share,
    StockUpdate,
)
from schemas.headline import HeadlineInputs, benchmark_metrics, gaps, headline
from streams.counters.hotwords import HotWords

MINUTE_MS = 60_000
NO_TIME = -(2**62)
#: Markers kept per room (a 3-hour stream with a busy risk engine stays readable and small).
MAX_MARKERS = 300
#: The trend charts' reach: minutes older than this before the room's newest viewer event get no row
#: (their events still count in the totals), and a visit that starts that far back is not timed.  Why:
#: the series is dense, and one valid event stamped years back made it millions of rows, a view Kafka
#: refused; the job then restarted forever on the state its changelog gave back.
MAX_SPAN_MS = 12 * 3600 * 1000
#: Products with a funnel row per room.  SKUs the host put on sale (stock, host actions) always get one;
#: beyond this many rows, a product only viewers named (an impression, a click, an order for a SKU
#: never on sale) is counted under :data:`OTHER_SKU`: made-up SKU ids in clicks grew a room's view past
#: Kafka's message limit.
MAX_SKUS = 200
OTHER_SKU = "_other"

#: Columns of a per-minute row, in order.
SERIES_FIELDS = (
    "online", "entries", "comments", "likes", "impressions", "clicks", "orders", "gmv_paid_cents", "follows",
    "shares",
)
#: Columns of a per-SKU row, in order (ctr and conversion are derived, see :func:`sku_row`).
SKU_FIELDS = ("impressions", "clicks", "ctr", "attempts", "accepted", "paid", "gmv_paid_cents", "conversion")

#: Answers counted once per order: the decision on an attempt ("a") and the payment ("p").
_COUNTED_ONCE = {"accepted": "a", "rejected": "a", "paid": "p"}

HOST_MARKER = {"open_sale": "sale_open", "close_sale": "sale_close", "restock": "restock", "pin": "pin",
               "unpin": "unpin"}


class SkuFunnel(msgspec.Struct, array_like=True):
    impressions: int = 0
    clicks: int = 0
    attempts: int = 0
    accepted: int = 0
    paid: int = 0
    gmv_paid_cents: int = 0


class Minute(msgspec.Struct, array_like=True):
    """One minute of the room, columns as :data:`SERIES_FIELDS`."""

    online: int = 0
    entries: int = 0
    comments: int = 0
    likes: int = 0
    impressions: int = 0
    clicks: int = 0
    orders: int = 0
    gmv_paid_cents: int = 0
    follows: int = 0
    shares: int = 0


class Marker(msgspec.Struct, array_like=True, frozen=True):
    ts: int
    kind: str
    sku_id: str | None = None
    label: str = ""


class RoomConsole(msgspec.Struct, kw_only=True):
    """Everything the console knows about one room."""

    room_id: str
    first_ts: int = NO_TIME
    last_ts: int = NO_TIME
    skus: dict[str, SkuFunnel] = msgspec.field(default_factory=dict)
    sources: dict[str, int] = msgspec.field(default_factory=dict)
    #: Joins of followers, of non-followers, and of viewers whose client did not say.
    follower_entries: list[int] = msgspec.field(default_factory=lambda: [0, 0, 0])
    joins: int = 0
    leaves: int = 0
    join_ts_sum: int = 0
    leave_ts_sum: int = 0
    #: Distinct viewers who joined, and distinct users with an accepted order (members in :class:`Members`).
    viewer_count: int = 0
    buyer_count: int = 0
    follows: int = 0
    shares: int = 0
    comments: int = 0
    likes: int = 0
    minutes: dict[int, Minute] = msgspec.field(default_factory=dict)
    markers: list[Marker] = msgspec.field(default_factory=list)
    markers_dropped: int = 0
    #: SKUs marked sold out since their last open or restock, and the newest stock update per SKU.
    sold_out: set[str] = msgspec.field(default_factory=set)
    #: SKUs opened or restocked and not sold out since: only these can get a ``sold_out`` marker.
    armed: set[str] = msgspec.field(default_factory=set)
    stock_ts: dict[str, int] = msgspec.field(default_factory=dict)
    peak_online: int = 0
    peak_online_ts: int = NO_TIME
    pinned: str | None = None
    benchmark: RoomBenchmark | None = None

    # ---- derived figures ----------------------------------------------------------------

    def watch_ms(self) -> int:
        """Total watch time so far (see the module docstring)."""
        if self.last_ts == NO_TIME:
            return 0
        return max(0, self.leave_ts_sum - self.join_ts_sum + self.last_ts * (self.joins - self.leaves))

    def duration_ms(self) -> int:
        return 0 if self.first_ts == NO_TIME else self.last_ts - self.first_ts

    def totals(self) -> SkuFunnel:
        out = SkuFunnel()
        for f in self.skus.values():
            out.impressions += f.impressions
            out.clicks += f.clicks
            out.attempts += f.attempts
            out.accepted += f.accepted
            out.paid += f.paid
            out.gmv_paid_cents += f.gmv_paid_cents
        return out

    def headline_inputs(self) -> HeadlineInputs:
        t = self.totals()
        return HeadlineInputs(
            duration_ms=self.duration_ms(), watch_ms=self.watch_ms(), viewers=self.viewer_count,
            impressions=t.impressions, clicks=t.clicks, buyers=self.buyer_count, gmv_paid_cents=t.gmv_paid_cents,
            follows=self.follows, comments=self.comments,
        )


def ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def sku_row(f: SkuFunnel) -> list[Any]:
    """One SKU as the dashboard row of :data:`SKU_FIELDS`."""
    return [f.impressions, f.clicks, ratio(f.clicks, f.impressions), f.attempts, f.accepted, f.paid,
            f.gmv_paid_cents, ratio(f.paid, f.clicks)]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(RoomConsole)


def encode_state(room: RoomConsole) -> bytes:
    return _enc.encode(room)


def decode_state(raw: bytes) -> RoomConsole:
    return _dec.decode(raw)


@dataclass
class Members:
    """A room's sets, checkpointed one member per record: who joined, who bought, which answers
    (``a|p / sku / user / order_id``: a decision, a payment) were already counted."""

    viewers: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)


# Changelog keys; ids never contain "|" (schemas.base.Id).
_STATE, _VIEWER, _BUYER, _ANSWER = "c|", "cv|", "cb|", "ca|"


class ConsoleCounters:
    """The console state of every room fed to it (one partition's rooms, in the runtime)."""

    def __init__(self, hot_words: HotWords | None = None) -> None:
        #: Live hot words (optional: jieba costs ~10-50 us per new comment text); not checkpointed, a
        #: restarted worker has them back within the window (a minute).
        self.hot_words = hot_words
        self.rooms: dict[str, RoomConsole] = {}
        self.members: dict[str, Members] = {}
        self._dirty: set[str] = set()
        self._new_members: list[tuple[str, str, str]] = []  # (key prefix, room, member)
        self._apply: dict[type[Event], Callable[[RoomConsole, Any], None]] = {
            Presence: self._presence,
            ProductImpression: self._impression,
            ProductClick: self._click,
            Follow: self._follow,
            Share: self._share,
            Comment: self._comment,
            Like: self._like,
            OrderResult: self._result,
            StockUpdate: self._stock,
            HostAction: self._host,
            Alert: self._alert,
            RoomCounters: self._counters,
            RoomBenchmark: self._benchmark,
        }

    #: Event types the console reads (anything else is refused by :meth:`apply`).
    @property
    def event_types(self) -> tuple[type[Event], ...]:
        return tuple(self._apply)

    def room(self, room_id: str) -> RoomConsole:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = RoomConsole(room_id=room_id)
            self.members[room_id] = Members()
        return room

    def apply(self, event: Event) -> None:
        """Fold one event into its room; KeyError for a type the console does not read."""
        handler = self._apply[type(event)]
        room_id: str = event.room_id  # type: ignore[attr-defined]
        handler(self.room(room_id), event)
        self._dirty.add(room_id)

    def _add_member(self, room: RoomConsole, members: set[str], prefix: str, member: str) -> bool:
        if member in members:
            return False
        members.add(member)
        self._new_members.append((prefix, room.room_id, member))
        return True

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _viewer_time(room: RoomConsole, ts: int) -> Minute:
        """Extend the room's span to ``ts`` (a viewer event) and return its minute's row (a row that is
        not kept when ``ts`` is beyond the charts' reach, :data:`MAX_SPAN_MS`)."""
        if ts > room.last_ts:
            room.last_ts = ts
        floor = room.last_ts - MAX_SPAN_MS
        if ts < floor:
            return Minute()
        if room.first_ts == NO_TIME or ts < room.first_ts:
            room.first_ts = ts
        if room.first_ts < floor:
            room.first_ts = floor
        return _minute(room, ts)

    @staticmethod
    def _mark(room: RoomConsole, marker: Marker) -> None:
        room.markers.append(marker)
        if len(room.markers) > MAX_MARKERS:
            drop = next((i for i, m in enumerate(room.markers) if m.kind == "alert"), 0)
            del room.markers[drop]
            room.markers_dropped += 1

    @staticmethod
    def _sku(room: RoomConsole, sku_id: str, offered: bool = False) -> SkuFunnel:
        """The funnel row of ``sku_id``; one on sale (stock seen) or ``offered`` is never capped (see
        :data:`MAX_SKUS`)."""
        funnel = room.skus.get(sku_id)
        if funnel is None:
            if not offered and len(room.skus) >= MAX_SKUS and sku_id not in room.stock_ts:
                sku_id = OTHER_SKU
                funnel = room.skus.get(sku_id)
                if funnel is not None:
                    return funnel
            funnel = room.skus[sku_id] = SkuFunnel()
        return funnel

    # ---- handlers -----------------------------------------------------------------------

    def _presence(self, room: RoomConsole, e: Presence) -> None:
        minute = self._viewer_time(room, e.ts)
        timed = e.ts >= room.last_ts - MAX_SPAN_MS  # a visit that far back is not timed (see MAX_SPAN_MS)
        if e.action == "join":
            if timed:
                room.joins += 1
                room.join_ts_sum += e.ts
            if self._add_member(room, self.members[room.room_id].viewers, _VIEWER, e.user_id):
                room.viewer_count += 1
            source = e.source or "unknown"
            room.sources[source] = room.sources.get(source, 0) + 1
            room.follower_entries[0 if e.is_follower else 2 if e.is_follower is None else 1] += 1
            minute.entries += 1
        elif e.action == "leave" and timed:
            room.leaves += 1
            room.leave_ts_sum += e.ts

    def _impression(self, room: RoomConsole, e: ProductImpression) -> None:
        self._viewer_time(room, e.ts).impressions += 1
        self._sku(room, e.sku_id).impressions += 1

    def _click(self, room: RoomConsole, e: ProductClick) -> None:
        self._viewer_time(room, e.ts).clicks += 1
        self._sku(room, e.sku_id).clicks += 1

    def _follow(self, room: RoomConsole, e: Follow) -> None:
        self._viewer_time(room, e.ts).follows += 1
        room.follows += 1

    def _share(self, room: RoomConsole, e: Share) -> None:
        self._viewer_time(room, e.ts).shares += 1
        room.shares += 1

    def _comment(self, room: RoomConsole, e: Comment) -> None:
        self._viewer_time(room, e.ts).comments += 1
        room.comments += 1
        if self.hot_words is not None:
            self.hot_words.add(room.room_id, e.text, e.ts)

    def _like(self, room: RoomConsole, e: Like) -> None:
        self._viewer_time(room, e.ts).likes += e.count
        room.likes += e.count

    def _result(self, room: RoomConsole, e: OrderResult) -> None:
        funnel = self._sku(room, e.sku_id)
        kind = _COUNTED_ONCE.get(e.status)
        if kind is None:
            return
        members = self.members[room.room_id]
        if not self._add_member(room, members.answered, _ANSWER, f"{kind}/{e.sku_id}/{e.user_id}/{e.order_id}"):
            return  # the first answer again, to a re-sent order or payment
        if e.status in ("accepted", "rejected"):
            funnel.attempts += 1
            if e.status == "accepted":
                funnel.accepted += 1
                if self._add_member(room, members.buyers, _BUYER, e.user_id):
                    room.buyer_count += 1
                _minute(room, e.ts).orders += 1
        elif e.status == "paid":
            gmv = e.price_cents * e.quantity
            funnel.paid += 1
            funnel.gmv_paid_cents += gmv
            _minute(room, e.ts).gmv_paid_cents += gmv

    def _stock(self, room: RoomConsole, e: StockUpdate) -> None:
        if e.ts < room.stock_ts.get(e.sku_id, NO_TIME):
            return  # an older state than one already seen
        room.stock_ts[e.sku_id] = e.ts
        if e.available == 0 and e.total > 0 and e.sku_id in room.armed:
            room.armed.discard(e.sku_id)
            room.sold_out.add(e.sku_id)
            self._mark(room, Marker(e.ts, "sold_out", e.sku_id, f"{e.sold} sold"))

    def _host(self, room: RoomConsole, e: HostAction) -> None:
        label = ""
        if e.action == "open_sale":
            label = e.title or ""
            room.sold_out.discard(e.sku_id)
            room.armed.add(e.sku_id)
        elif e.action == "restock":
            label = f"+{e.stock}"
            room.sold_out.discard(e.sku_id)
            room.armed.add(e.sku_id)
        elif e.action == "pin":
            room.pinned = e.sku_id
        elif e.action == "unpin" and room.pinned == e.sku_id:
            room.pinned = None
        self._mark(room, Marker(e.ts, HOST_MARKER[e.action], e.sku_id, label))

    def _alert(self, room: RoomConsole, e: Alert) -> None:
        self._mark(room, Marker(e.ts, "alert", None, f"{e.level}: {e.kind}"))

    def _counters(self, room: RoomConsole, e: RoomCounters) -> None:
        minute = _minute(room, e.window_start)
        if e.online > minute.online:
            minute.online = e.online
        if e.online > room.peak_online:
            room.peak_online = e.online
            room.peak_online_ts = e.window_start

    def _benchmark(self, room: RoomConsole, e: RoomBenchmark) -> None:
        if room.benchmark is None or e.ts >= room.benchmark.ts:
            room.benchmark = e

    # ---- changelog ----------------------------------------------------------------------

    def take_changes(self) -> list[tuple[bytes, bytes]]:
        """(key, value) records that bring a changelog up to date; clears them."""
        changes = [((_STATE + room).encode(), encode_state(self.rooms[room])) for room in sorted(self._dirty)]
        changes += [(f"{prefix}{room_id}|{member}".encode(), b"1") for prefix, room_id, member in self._new_members]
        self._dirty.clear()
        self._new_members.clear()
        return changes

    @classmethod
    def restore(cls, records: Iterable[tuple[bytes, bytes | None]]) -> ConsoleCounters:
        """Rebuild the console from a changelog read in order (later records win, None deletes)."""
        latest: dict[bytes, bytes] = {}
        for raw, value in records:
            if value is None:
                latest.pop(raw, None)
            else:
                latest[raw] = value
        console = cls()
        sets = {_VIEWER: "viewers", _BUYER: "buyers", _ANSWER: "answered"}
        for raw_key, value in latest.items():
            key = raw_key.decode()
            if key.startswith(_STATE):
                state = decode_state(value)
                console.room(state.room_id)
                console.rooms[state.room_id] = state
                continue
            prefix = key[: key.index("|") + 1]
            room_id, member = key[len(prefix):].split("|", 1)
            console.room(room_id)
            getattr(console.members[room_id], sets[prefix]).add(member)
        return console

    # ---- output -------------------------------------------------------------------------

    def snapshot(self, room_id: str, hot_words: int = 20) -> dict[str, Any]:
        """The room's whole console as plain JSON-able data (see :func:`delta` for what to send)."""
        out = snapshot(self.room(room_id))
        if self.hot_words is not None:
            self.hot_words.advance(room_id, out["ts"] or 0)
            out["hot_words"] = [list(kv) for kv in self.hot_words.top(room_id, hot_words)]
        return out


def _minute(room: RoomConsole, ts: int) -> Minute:
    """The row of ``ts``'s minute; a throwaway row beyond the charts' reach (:data:`MAX_SPAN_MS`)."""
    start = ts - ts % MINUTE_MS
    row = room.minutes.get(start)
    if row is None:
        floor = room.last_ts - MAX_SPAN_MS if room.last_ts != NO_TIME else NO_TIME
        if start + MINUTE_MS <= floor:
            return Minute()
        row = room.minutes[start] = Minute()
        if len(room.minutes) > MAX_SPAN_MS // MINUTE_MS + 2:  # rows the newest events left behind
            for old in [m for m in room.minutes if m + MINUTE_MS <= floor]:
                del room.minutes[old]
    return row


def series(room: RoomConsole) -> dict[str, Any]:
    """Dense per-minute rows from the first to the last minute with anything in it."""
    if not room.minutes:
        return {"start": None, "step": MINUTE_MS, "fields": list(SERIES_FIELDS), "rows": []}
    first, last = min(room.minutes), max(room.minutes)
    if room.last_ts != NO_TIME:  # rows from before the charts' reach were kept only until newer events came
        floor = room.last_ts - MAX_SPAN_MS
        first = max(first, floor - floor % MINUTE_MS)
    empty = Minute()
    rows = [list(msgspec.structs.astuple(room.minutes.get(m, empty)))
            for m in range(first, last + MINUTE_MS, MINUTE_MS)]
    return {"start": first, "step": MINUTE_MS, "fields": list(SERIES_FIELDS), "rows": rows}


def snapshot(room: RoomConsole) -> dict[str, Any]:
    """See :meth:`ConsoleCounters.snapshot`."""
    t = room.totals()
    current = headline(room.headline_inputs())
    bench = benchmark_metrics(room.benchmark) if room.benchmark is not None else None
    ranked = gaps(current, bench) if bench is not None else []
    diagnosis = [
        {"metric": g.metric, "value": g.value, "benchmark": g.benchmark, "gap": g.gap, "level": g.level}
        for g in ranked
    ]
    markers = [list(msgspec.structs.astuple(m)) for m in room.markers]
    if room.peak_online_ts != NO_TIME:
        markers.append([room.peak_online_ts, "online_peak", None, str(room.peak_online)])
    return {
        "room": room.room_id,
        "ts": None if room.last_ts == NO_TIME else room.last_ts,
        "pinned": room.pinned,
        "totals": {
            "viewers": room.viewer_count, "entries": room.joins, "impressions": t.impressions, "clicks": t.clicks,
            "ctr": ratio(t.clicks, t.impressions), "attempts": t.attempts, "accepted": t.accepted, "paid": t.paid,
            "gmv_paid_cents": t.gmv_paid_cents, "buyers": room.buyer_count, "follows": room.follows,
            "shares": room.shares, "comments": room.comments, "likes": room.likes,
            "watch_ms": room.watch_ms(), "avg_watch_ms": current["avg_watch_ms"], "peak_online": room.peak_online,
        },
        "skus": {sku: sku_row(f) for sku, f in sorted(room.skus.items())},
        "sku_fields": list(SKU_FIELDS),
        "sources": dict(sorted(room.sources.items())),
        "followers": {"follower": room.follower_entries[0], "non_follower": room.follower_entries[1],
                      "unknown": room.follower_entries[2]},
        "series": series(room),
        "markers": markers,
        "markers_dropped": room.markers_dropped,
        "headline": current,
        "benchmark": bench,
        "diagnosis": diagnosis,
        "worst": ranked[0].metric if ranked and ranked[0].gap < 0 else None,
    }


# ---- deltas: what goes on the wire -----------------------------------------------------------
# One rule for the job, the gateway and the page: :mod:`schemas.console` (re-exported here).
__all__ = ["ConsoleCounters", "RoomConsole", "apply_delta", "delta", "snapshot", "view_of"]


def view_of(snap: dict[str, Any], published_ms: int) -> RoomConsoleView:
    """The wire view (``room-console``) of a :func:`snapshot`, published at ``published_ms``, its floats
    rounded for display (:func:`schemas.console.round_for_display`).

    ``msgspec.convert`` checks every field against the schema, so the job never publishes a view
    the gateway would refuse."""
    body = round_for_display(copy.deepcopy(snap))
    body["room_id"] = body.pop("room")
    body["event_ts"] = body.pop("ts")
    body["ts"] = published_ms
    return msgspec.convert(body, RoomConsoleView)
