"""One simulated live room, advanced one event-time second at a time.

Within a second the room keeps a causal order in event time: viewers leave in its first 100 ms,
present viewers comment, like and buy between 100 and 900 ms, newcomers join in the last 100 ms
(so nobody speaks before joining or after leaving).  Things that happen later (heartbeats 30 s
after a join, a client retrying an order, a payment a minute after the order, the sale opening
and closing) are scheduled into the second they fall in.  All randomness comes from the room's own
``random.Random``, seeded from the scenario seed and the room index, so rooms are independent and
the whole stream is reproducible.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import msgspec

from schemas import (
    Comment,
    Follow,
    HostAction,
    Like,
    OrderAttempt,
    Payment,
    Presence,
    ProductClick,
    ProductImpression,
    Share,
)
from schemas.base import Event
from schemas.events import TrafficSource
from schemas.host import sale_config_for
from simulator.config import ScenarioConfig
from simulator.funnel import (
    FOLLOW_RATE,
    FOLLOWER_SHARE,
    INTEREST,
    MAX_BUY_WEIGHT,
    SHARE_CHANNELS,
    SHARE_RATE,
    SHARE_WEIGHTS,
    SHELF_RATE,
    buy_weight,
    click_chance,
    pick_source,
)
from simulator.texts import TITLES, pick_mood, render
from simulator.timeline import (
    SaleWindow,
    attempt_time,
    audience_shape,
    like_burst_size,
    poisson,
    sale_window,
)

#: Mean time a viewer stays, in seconds (churn replaces leavers to hold the audience curve).
MEAN_STAY_S = 240.0
#: Share of arrivals who are returning viewers (left earlier, join again).
RETURN_SHARE = 0.15
#: Share of buyers who try a second, distinct order (over the per-user limit on the hot SKU).
SECOND_ORDER_SHARE = 0.05
#: Share of payers who pay after their reservation expired.
LATE_PAYER_SHARE = 0.08

# A scheduled entry: (ts, kind, data).  Kinds: "event" (a ready Event), "hb" (user, session join
# ts), "order" (sku), "host" (a HostAction: sent with the SaleConfig it commands, a pin also shows
# the product to everyone present), "seen" (user, session join ts, sku id: a newcomer sees the
# pinned card).
_Entry = tuple[int, str, Any]


class _Sku:
    def __init__(self, sku_id: str, hot: bool, stock: int, buyers: int, price_cents: int, title: str) -> None:
        self.sku_id = sku_id
        self.hot = hot
        self.stock = stock
        self.buyers = buyers
        self.price_cents = price_cents
        self.title = title
        self.per_user_limit = 1 if hot else 2
        self.buyer_ids: set[str] = set()


class Room:
    """State and behaviour of one room; :meth:`step` returns the events of one second."""

    def __init__(self, config: ScenarioConfig, index: int) -> None:
        self.cfg = config
        self.rng = random.Random(f"{config.seed}/room/{index}")
        self.prefix = f"s{config.seed}-r{index}"
        self.room_id = f"s{config.seed}-room{index}"
        shift = self.rng.uniform(-0.05, 0.05) if config.rooms > 1 else 0.0
        self.window: SaleWindow = sale_window(config.start_ts, config.duration_s, shift)
        span = config.duration_s * 1000
        self.sale_u = (self.window.starts_at - config.start_ts) / span
        self.present: list[str] = []
        self._pos: dict[str, int] = {}
        self._session: dict[str, int] = {}
        self._departed: list[str] = []
        self._ids = 0
        self._users = 0
        self._pending: defaultdict[int, list[_Entry]] = defaultdict(list)
        self.host_id = f"{self.prefix}-host"
        #: Each viewer's source of their current (or last) visit, and who follows the room.
        self._source: dict[str, TrafficSource] = {}
        self.followers: set[str] = set()
        self.pinned: str | None = None
        #: (user, sku) -> first showing's time, so a buyer's click always follows a showing.
        self._seen: dict[tuple[str, str], int] = {}
        self.skus = self._make_skus()
        self._storms = self._make_storms()
        self._sold_out_guess = self.window.starts_at + 5000 if config.buyers > config.stock else None
        self._schedule_sale()

    # ---- ids and scheduling -------------------------------------------------------------

    def _id(self, kind: str) -> str:
        self._ids += 1
        return f"{self.prefix}-{kind}{self._ids}"

    def _below(self, n: int) -> int:
        """A uniform integer in [0, n): ``int(random() * n)``, about 3x cheaper than ``randrange``
        (this is the generator's hottest call; the bias for n far below 2**53 is negligible)."""
        return int(self.rng.random() * n)

    def _new_user(self, kind: str = "u") -> str:
        self._users += 1
        return f"{self.prefix}-{kind}{self._users}"

    def _at(self, ts: int, kind: str, data: Any) -> None:
        self._pending[(ts - self.cfg.start_ts) // 1000].append((ts, kind, data))

    # ---- set-up -------------------------------------------------------------------------

    def _make_skus(self) -> list[_Sku]:
        cfg, rng = self.cfg, self.rng
        skus = []
        for j in range(cfg.skus):
            hot = j == 0
            buyers = cfg.buyers if hot else max(1, min(cfg.buyers, int(cfg.stock * rng.uniform(0.3, 1.1))))
            skus.append(
                _Sku(
                    sku_id=f"{self.prefix}-sku{j}",
                    hot=hot,
                    stock=cfg.stock,
                    buyers=buyers,
                    price_cents=rng.choice([990, 1990, 2990, 4990, 9900, 19900, 39900]),
                    title=rng.choice(TITLES),
                )
            )
        return skus

    def _make_storms(self) -> list[tuple[int, int, float]]:
        """Like storms (start second, end second, multiplier): one as the sale opens, more at random."""
        d = self.cfg.duration_s
        sale_sec = (self.window.starts_at - self.cfg.start_ts) // 1000
        storms = [(sale_sec, sale_sec + 6, 8.0)]
        for _ in range(d // 120):
            s = self.rng.randrange(d)
            storms.append((s, s + self.rng.randint(3, 8), self.rng.uniform(4, 10)))
        return storms

    def _schedule_sale(self) -> None:
        """The host's console actions: open every SKU's sale at the announcement, pin the hot SKU
        then each other SKU in turn through the sale, restock the hot one, close and unpin at the end.
        Each open/close/restock is a HostAction (the audit record) plus the SaleConfig it commands."""
        cfg, w = self.cfg, self.window
        for sku in self.skus:
            self._host(w.announce_ms, "open_sale", sku, stock=sku.stock, price_cents=sku.price_cents,
                       starts_at=w.starts_at, ends_at=w.ends_at, per_user_limit=sku.per_user_limit,
                       reservation_ttl_s=cfg.reservation_ttl_s, title=sku.title)
            for _ in range(sku.buyers):
                self._at(attempt_time(self.rng, w), "order", sku)
            if cfg.close_sales:
                self._host(w.ends_at, "close_sale", sku)
        if cfg.restock:
            self._host(w.restock_at, "restock", self.skus[0], stock=cfg.restock)
        # Pins land 100-499 ms into their second, so the showings they cause fit in the same second.
        self._host(_pin_ts(w.announce_ms), "pin", self.skus[0])
        others = self.skus[1:]
        step = (w.ends_at - w.starts_at) // (len(others) + 1)
        for j, sku in enumerate(others, start=1):
            self._host(_pin_ts(w.starts_at + j * step), "pin", sku)
        if w.ends_at < cfg.end_ts - 1000:
            self._host(_pin_ts(w.ends_at), "unpin", self.skus[-1] if others else self.skus[0])

    def _host(self, ts: int, action: str, sku: _Sku, **terms: Any) -> None:
        self._at(ts, "host", HostAction(
            event_id=self._id("s"), room_id=self.room_id, host_id=self.host_id, action=action,  # type: ignore[arg-type]
            sku_id=sku.sku_id, ts=ts, **terms,
        ))

    # ---- audience -----------------------------------------------------------------------

    def _add(self, user: str, ts: int) -> None:
        self._pos[user] = len(self.present)
        self.present.append(user)
        self._session[user] = ts
        self._at(ts + self.cfg.heartbeat_s * 1000, "hb", (user, ts))

    def _remove_random(self) -> str:
        i = self._below(len(self.present))
        user = self.present[i]
        last = self.present.pop()
        if last != user:
            self.present[i] = last
            self._pos[last] = i
        del self._pos[user]
        del self._session[user]
        return user

    def _presence(self, user: str, action: str, ts: int) -> Presence:
        return Presence(event_id=self._id("p"), room_id=self.room_id, user_id=user, action=action, ts=ts)  # type: ignore[arg-type]

    def _join(self, user: str, ts: int) -> Presence:
        """A join with where the viewer came from and whether they already follow the room."""
        source = pick_source(self.rng)
        self._source[user] = source
        if user not in self.followers and self.rng.random() < FOLLOWER_SHARE[source]:
            self.followers.add(user)
        return Presence(event_id=self._id("p"), room_id=self.room_id, user_id=user, action="join",
                        source=source, is_follower=user in self.followers, ts=ts)

    # ---- one second ---------------------------------------------------------------------

    def step(self, sec: int) -> list[Event]:
        """Every event of this room whose event time falls in second ``sec`` of the stream."""
        cfg, rng = self.cfg, self.rng
        t0 = cfg.start_ts + sec * 1000
        last = sec == cfg.duration_s - 1
        out: list[Event] = []
        left_now: list[str] = []

        for _ in range(min(poisson(rng, len(self.present) / MEAN_STAY_S), len(self.present))):
            user = self._remove_random()
            left_now.append(user)
            out.append(self._presence(user, "leave", t0 + self._below(100)))

        # Handling an entry may schedule another into this same second (a quick retry): loop.
        while entries := self._pending.pop(sec, None):
            for ts, kind, data in sorted(entries, key=lambda e: e[0]):
                if kind == "event":
                    out.append(data)
                elif kind == "host":
                    out.extend(self._host_event(data, t0))
                elif kind == "seen":
                    user, session, sku_id = data
                    if self._session.get(user) == session and self.pinned == sku_id:
                        out.extend(self._show(user, sku_id, "pinned", ts, t0))
                elif kind == "hb":
                    user, session = data
                    # In the last second everyone leaves from 950 ms on: no heartbeat after that.
                    if self._session.get(user) == session and not (last and ts >= t0 + 950):
                        out.append(self._presence(user, "heartbeat", max(ts, t0 + 100)))
                        self._at(ts + cfg.heartbeat_s * 1000, "hb", data)
                else:
                    out.extend(self._order(data, max(ts, t0 + 100)))

        self._chat(sec, t0, out)
        self._browse(t0, out)

        if last:
            while self.present:
                out.append(self._presence(self._remove_random(), "leave", t0 + 950 + self._below(50)))
        else:
            self._arrivals(sec, t0, out)
        self._departed.extend(left_now)
        return out

    def _arrivals(self, sec: int, t0: int, out: list[Event]) -> None:
        rng = self.rng
        target = self.cfg.peak_viewers * audience_shape(sec / self.cfg.duration_s, self.sale_u)
        online = len(self.present)
        lam = max(0.0, target - online) * 0.2 + online / MEAN_STAY_S
        for _ in range(poisson(rng, lam)):
            if self._departed and rng.random() < RETURN_SHARE:
                i = self._below(len(self._departed))
                self._departed[i], self._departed[-1] = self._departed[-1], self._departed[i]
                user = self._departed.pop()
            else:
                user = self._new_user()
            ts = t0 + 900 + self._below(100)
            self._add(user, ts)
            out.append(self._join(user, ts))
            if self.pinned is not None:  # the pinned card is the first thing a newcomer sees
                self._at(ts + 1000 - ts % 1000 + 100 + self._below(300), "seen", (user, ts, self.pinned))

    def _frustration(self, t0: int) -> float:
        if self._sold_out_guess is None or t0 < self._sold_out_guess:
            return 0.0
        return max(0.0, 0.8 - (t0 - self._sold_out_guess) / 120_000)

    def _chat(self, sec: int, t0: int, out: list[Event]) -> None:
        cfg, rng = self.cfg, self.rng
        if not self.present:
            return
        present = self.present
        online = len(present)
        since_sale = t0 - self.window.starts_at
        boost = 2.5 if 0 <= since_sale < 30_000 else 1.0
        frustration = self._frustration(t0)
        for _ in range(poisson(rng, online * cfg.comment_rate / 60 * boost)):
            out.append(Comment(
                event_id=self._id("c"), room_id=self.room_id, user_id=present[self._below(online)],
                text=render(rng, pick_mood(rng, frustration)), ts=t0 + 100 + self._below(800),
            ))
        storm = max((m for a, b, m in self._storms if a <= sec < b), default=1.0)
        taps = poisson(rng, online * cfg.like_rate / 60 * storm)
        while taps > 0:
            count = min(like_burst_size(rng), taps)
            taps -= count
            out.append(Like(
                event_id=self._id("l"), room_id=self.room_id, user_id=present[self._below(online)],
                count=count, ts=t0 + 100 + self._below(800),
            ))

    # ---- buying -------------------------------------------------------------------------

    def _buyer(self, sku: _Sku) -> str:
        """A present viewer who has not bought this SKU yet, else someone arriving by a shared link.

        Viewers are weighed by their interest (source) and whether they follow the room, so sources
        convert differently; a candidate is kept with probability weight / largest weight."""
        fallback = None
        for _ in range(8):
            if not self.present:
                break
            user = self.present[self._below(len(self.present))]
            if user in sku.buyer_ids:
                continue
            fallback = user
            weight = buy_weight(self._source.get(user, "other"), user in self.followers)
            if self.rng.random() * MAX_BUY_WEIGHT < weight:
                return user
        return fallback or self._new_user("b")

    def _order(self, sku: _Sku, ts: int) -> list[Event]:
        rng = self.rng
        user = self._buyer(sku)
        sku.buyer_ids.add(user)
        # The tap on the product (after a showing of it, if the buyer had none) comes first.
        t0 = ts - ts % 1000
        click_ts = ts - self._below(min(ts - t0 - 100, 3000) + 1)
        out: list[Event] = []
        placement = "pinned" if self.pinned == sku.sku_id else "shelf"
        if self._seen.get((user, sku.sku_id), click_ts + 1) > click_ts:
            out.append(self._impression(user, sku.sku_id, placement, t0 + 100 + self._below(click_ts - t0 - 99)))
        out.append(ProductClick(event_id=self._id("k"), room_id=self.room_id, sku_id=sku.sku_id, user_id=user,
                                placement=placement, ts=click_ts))  # type: ignore[arg-type]
        out.append(self._attempt(sku, user, ts))
        if rng.random() < SECOND_ORDER_SHARE:
            self._at_event(self._attempt(sku, user, ts + rng.randint(1000, 10_000)))
        return out

    def _attempt(self, sku: _Sku, user: str, ts: int) -> OrderAttempt:
        """One distinct order attempt, with its deliberate retry and its payment scheduled."""
        cfg, rng = self.cfg, self.rng
        quantity = (2 if rng.random() < 0.1 else 1) if sku.hot else rng.randint(1, 3)
        attempt = OrderAttempt(
            order_id=self._id("o"), room_id=self.room_id, sku_id=sku.sku_id, user_id=user,
            quantity=quantity, ts=ts,
        )
        if rng.random() < cfg.retry_share:
            self._at_event(msgspec.structs.replace(attempt, ts=ts + rng.randint(300, 3000)))
        roll = rng.random()
        if roll < cfg.pay_share:
            if rng.random() < LATE_PAYER_SHARE:
                delay = cfg.reservation_ttl_s * 1000 + rng.randint(1000, 60_000)
            else:
                delay = 3000 + int(rng.expovariate(1 / 20_000))
            self._at_event(self._payment(attempt, "paid", ts + delay))
        elif roll < cfg.pay_share + cfg.cancel_share:
            self._at_event(self._payment(attempt, "cancelled", ts + rng.randint(2000, 60_000)))
        return attempt

    def _at_event(self, event: Event) -> None:
        self._at(event.ts, "event", event)  # type: ignore[attr-defined]

    def _payment(self, attempt: OrderAttempt, action: str, ts: int) -> Payment:
        return Payment(
            event_id=self._id("y"), order_id=attempt.order_id, room_id=attempt.room_id,
            sku_id=attempt.sku_id, user_id=attempt.user_id, action=action, ts=ts,  # type: ignore[arg-type]
        )

    # ---- the console's events: host actions, showings, taps, follows, shares ------------

    def _host_event(self, action: HostAction, t0: int) -> list[Event]:
        """The audit record, the sale command it becomes, and for a pin a showing to everyone present."""
        out: list[Event] = [action]
        config = sale_config_for(action)
        if config is not None:
            out.append(config)
        elif action.action == "pin":
            self.pinned = action.sku_id
            for user in list(self.present):
                out.extend(self._show(user, action.sku_id, "pinned", action.ts + self._below(400), t0))
        else:  # unpin
            self.pinned = None
        return out

    def _impression(self, user: str, sku_id: str, placement: str, ts: int) -> ProductImpression:
        key = (user, sku_id)
        if ts < self._seen.get(key, ts + 1):
            self._seen[key] = ts
        return ProductImpression(event_id=self._id("i"), room_id=self.room_id, sku_id=sku_id, user_id=user,
                                 placement=placement, ts=ts)  # type: ignore[arg-type]

    def _show(self, user: str, sku_id: str, placement: str, ts: int, t0: int) -> list[Event]:
        """One showing of a product to a present viewer, and maybe their tap on it (same second)."""
        out: list[Event] = [self._impression(user, sku_id, placement, ts)]
        if self.rng.random() < click_chance(placement, self._source.get(user, "other")):
            out.append(ProductClick(event_id=self._id("k"), room_id=self.room_id, sku_id=sku_id, user_id=user,
                                    placement=placement, ts=ts + self._below(t0 + 900 - ts)))  # type: ignore[arg-type]
        return out

    def _browse(self, t0: int, out: list[Event]) -> None:
        """Viewers open the shelf (every SKU shown), follow the room, share it."""
        present = self.present
        online = len(present)
        if not online:
            return
        rng = self.rng
        sale_on = self.window.starts_at <= t0 < self.window.ends_at
        for _ in range(poisson(rng, online * SHELF_RATE / 60 * (1.5 if sale_on else 1.0))):
            user = present[self._below(online)]
            ts = t0 + 100 + self._below(500)
            for sku in self.skus:
                out.extend(self._show(user, sku.sku_id, "shelf", ts, t0))
        for _ in range(poisson(rng, online * FOLLOW_RATE / 60)):
            user = present[self._below(online)]
            if user not in self.followers and rng.random() < INTEREST[self._source.get(user, "other")] / 2:
                self.followers.add(user)
                out.append(Follow(event_id=self._id("f"), room_id=self.room_id, user_id=user,
                                  ts=t0 + 100 + self._below(800)))
        for _ in range(poisson(rng, online * SHARE_RATE / 60 * (2.0 if sale_on else 1.0))):
            user = present[self._below(online)]
            channel = rng.choices(SHARE_CHANNELS, SHARE_WEIGHTS)[0]
            out.append(Share(event_id=self._id("h"), room_id=self.room_id, user_id=user, channel=channel,  # type: ignore[arg-type]
                             ts=t0 + 100 + self._below(800)))


def _pin_ts(ts: int) -> int:
    """``ts`` moved into the 100-499 ms of its second (after the leaves, room for the showings)."""
    return ts - ts % 1000 + 100 + ts % 400
