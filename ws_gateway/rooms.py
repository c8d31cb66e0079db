"""A room's live state as the dashboard sees it, with sequence numbers and resume, no I/O.

Why coalescing lives here: workers may publish stock and comments hundreds of times a second, but a
dashboard needs a few frames a second.  :meth:`RoomState.apply` only records what changed;
:meth:`RoomState.flush_due` turns the changes into at most one update per audience and per
``flush_interval``, each encoded once and numbered by that audience's :class:`Channel`.

Sequence numbers are per (room, audience) and per gateway process (its ``epoch``): a client that
reconnects with ``epoch`` + ``last_seq`` gets exactly the updates it missed from the channel's
history, or, if they are gone or it was talking to another process, an explicit resync snapshot.

The pinned product: the room learns the host's pins from ``host-actions`` and each SKU's sale terms
from ``sale-config-applied`` (what the flash-sale job really applied, not what was asked).  Viewers get
``pinned`` (the SKU with its title, price and the sale's times; units left are in ``stock``) only in
the update where it changed, so their frames stay small; hosts also get ``sales``, every SKU's terms,
which is where the console sees its sale actions applied.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import msgspec

from schemas.base import Event
from schemas.console import RoomConsoleView, delta, view_body
from schemas.events import Alert, HostAction, RoomCounters, SaleConfig, ScoredComment, StockUpdate
from ws_gateway.protocol import encode

Audience = Literal["host", "viewer"]
AUDIENCES: tuple[Audience, ...] = ("host", "viewer")

#: Counter points kept for the sparklines a freshly opened dashboard draws at once.
SERIES_POINTS = 120
#: Sale terms kept per room (the most recently changed SKUs): a room's shelf, not an unbounded map.
MAX_SALES = 200


class Channel:
    """The numbered update stream of one (room, audience) with a bounded history for resume."""

    def __init__(self, room: str, audience: Audience, epoch: str, history: int) -> None:
        self.room = room
        self.audience = audience
        self.epoch = epoch
        self.seq = 0
        self._history: deque[tuple[int, bytes]] = deque(maxlen=max(history, 1))

    def publish(self, body: dict[str, Any]) -> bytes:
        """Number ``body`` with the next sequence, remember it, and return the encoded update."""
        self.seq += 1
        message = encode({"type": "update", "room": self.room, "epoch": self.epoch, "seq": self.seq, **body})
        self._history.append((self.seq, message))
        return message

    def replay(self, epoch: str | None, last_seq: int) -> list[bytes] | None:
        """The updates after ``last_seq``, in order, or None when they cannot be given without a gap
        (another epoch, a sequence from the future, or history already forgotten): then resync."""
        if epoch != self.epoch or last_seq > self.seq:
            return None
        if last_seq == self.seq:
            return []
        if not self._history or self._history[0][0] > last_seq + 1:
            return None
        return [message for seq, message in self._history if seq > last_seq]


class RoomState:
    """Latest counters, stock per SKU, recent alerts and scored comments of one room."""

    def __init__(
        self, room: str, epoch: str, *, history: int = 256, recent_comments: int = 30, recent_alerts: int = 20
    ) -> None:
        self.room = room
        self.channels = {audience: Channel(room, audience, epoch, history) for audience in AUDIENCES}
        self.counters: dict[str, Any] | None = None
        self.stock: dict[str, dict[str, Any]] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=recent_alerts)
        self.comments: deque[dict[str, Any]] = deque(maxlen=recent_comments)
        self.series: deque[list[int]] = deque(maxlen=SERIES_POINTS)
        #: The room's console (host audience only): the latest view, and the one the last update was made from.
        self.console: dict[str, Any] | None = None
        self._console_sent: dict[str, Any] | None = None
        self._counters_changed = False
        self._stock_changed: set[str] = set()
        self._new_alerts: list[dict[str, Any]] = []
        self._new_comments: list[dict[str, Any]] = []
        self._seen_alerts: set[str] = set()
        self.pin: dict[str, Any] | None = None
        self._pin_ts = -1
        self.sales: dict[str, dict[str, Any]] = {}
        self._pinned_changed = False
        self._sales_changed: set[str] = set()
        self._next_flush_at = float("-inf")

    # ------------------------------------------------------------------ input

    def apply(self, event: Event) -> bool:
        """Record one output event of this room; True when it changed what clients see."""
        if isinstance(event, RoomCounters):
            return self._apply_counters(event)
        if isinstance(event, StockUpdate):
            return self._apply_stock(
                event.sku_id, event.ts,
                {"available": event.available, "reserved": event.reserved, "sold": event.sold,
                 "total": event.total, "price_cents": event.price_cents},
            )
        if isinstance(event, ScoredComment):
            item = {"event_id": event.event_id, "user_id": event.user_id, "text": event.text,
                    "label": event.label, "score": event.score, "ts": event.ts}
            self.comments.append(item)
            self._new_comments.append(item)
            return True
        if isinstance(event, RoomConsoleView):
            self.console = view_body(event)
            return True
        if isinstance(event, HostAction):
            return self._apply_host_action(event)
        if isinstance(event, SaleConfig):
            return self._apply_sale(event)
        if isinstance(event, Alert):
            if event.alert_id in self._seen_alerts:
                return False
            self._seen_alerts.add(event.alert_id)
            item = msgspec.to_builtins(event)
            if self.alerts.maxlen is not None and len(self.alerts) == self.alerts.maxlen:
                self._seen_alerts.discard(self.alerts[0]["alert_id"])
            self.alerts.append(item)
            self._new_alerts.append(item)
            return True
        return False

    def _apply_host_action(self, event: HostAction) -> bool:
        """A pin or unpin moves the card (the newest wins, so a replay cannot bring an old pin back);
        the sale verbs change nothing until the flash-sale job applied them."""
        if event.action not in ("pin", "unpin") or event.ts < self._pin_ts:
            return False
        self._pin_ts = event.ts
        if event.action == "pin":
            pin = {"sku_id": event.sku_id, "title": event.title, "event_id": event.event_id, "ts": event.ts}
        elif self.pin is not None and self.pin["sku_id"] == event.sku_id:
            pin = None
        else:
            return False  # unpinning what is not pinned
        self.pin = pin
        self._pinned_changed = True
        return True

    def _apply_sale(self, cfg: SaleConfig) -> bool:
        """A sale config the flash-sale job applied: the SKU's terms for the card and the console."""
        known = self.sales.get(cfg.sku_id)
        if known is not None and (cfg.ts < known["ts"] or known["event_id"] == cfg.event_id):
            return False
        sale = dict(known or {"sku_id": cfg.sku_id, "state": "closed"})
        if cfg.action == "open":
            sale.update(state="open", price_cents=cfg.price_cents, starts_at=cfg.starts_at, ends_at=cfg.ends_at,
                        per_user_limit=cfg.per_user_limit, reservation_ttl_s=cfg.reservation_ttl_s,
                        title=cfg.title or sale.get("title"))
        elif cfg.action == "close":
            sale.update(state="closed", closed_at=cfg.ts)
        sale.update(last_action=cfg.action, event_id=cfg.event_id, ts=cfg.ts)
        self.sales.pop(cfg.sku_id, None)
        self.sales[cfg.sku_id] = sale
        while len(self.sales) > MAX_SALES:
            self.sales.pop(next(iter(self.sales)))
        self._sales_changed.add(cfg.sku_id)
        if self.pin is not None and self.pin["sku_id"] == cfg.sku_id:
            self._pinned_changed = True
        return True

    def pinned(self) -> dict[str, Any] | None:
        """The pinned card as viewers see it: the pin, with its SKU's applied sale terms if there are any."""
        if self.pin is None:
            return None
        sale = self.sales.get(self.pin["sku_id"], {})
        return {"sku_id": self.pin["sku_id"], "title": self.pin["title"] or sale.get("title"),
                "price_cents": sale.get("price_cents"), "starts_at": sale.get("starts_at"),
                "ends_at": sale.get("ends_at"), "state": sale.get("state"), "pinned_at": self.pin["ts"]}

    def _apply_counters(self, event: RoomCounters) -> bool:
        if self.counters is not None and event.window_end < self.counters["window_end"]:
            return False  # a late duplicate or a replay: the newer window already shows
        counters = msgspec.to_builtins(event)
        stock = counters.pop("stock", {})
        self.counters = counters
        self._counters_changed = True
        point = [event.window_end, event.gmv_paid_cents_total, event.gmv_reserved_cents_total,
                 event.orders_accepted_total, event.comments]
        if self.series and self.series[-1][0] == event.window_end:
            self.series[-1] = point
        else:
            self.series.append(point)
        for sku_id, sku in stock.items():
            known = self.stock.get(sku_id, {})
            self._apply_stock(sku_id, event.ts, {**sku, "price_cents": known.get("price_cents", 0)})
        return True

    def _apply_stock(self, sku_id: str, ts: int, values: dict[str, Any]) -> bool:
        """Keep the newest stock of a SKU; flash-sale StockUpdates and counter snapshots both carry it."""
        known = self.stock.get(sku_id)
        if known is not None and ts < known["ts"]:
            return False
        entry = {"sku_id": sku_id, **values, "ts": ts}
        if known == entry:
            return False
        self.stock[sku_id] = entry
        self._stock_changed.add(sku_id)
        return True

    # ------------------------------------------------------------------ output

    @property
    def dirty(self) -> bool:
        return bool(self._counters_changed or self._stock_changed or self._new_alerts or self._new_comments
                    or self._pinned_changed or self._sales_changed or self.console is not self._console_sent)

    def flush_due(self, now: float, interval: float) -> dict[Audience, bytes]:
        """Throttle, not debounce: a change after a quiet ``interval`` goes out at once, changes within
        it wait for the interval to end, so a room sends at most one update per ``interval`` and a
        quiet room adds no coalescing delay at all."""
        if not self.dirty or now < self._next_flush_at:
            return {}
        self._next_flush_at = now + interval
        return self.flush()

    def flush(self) -> dict[Audience, bytes]:
        """One numbered, encoded update per audience that has something new; clears the changes."""
        out: dict[Audience, bytes] = {}
        stock = {sku: self.stock[sku] for sku in sorted(self._stock_changed)}
        host: dict[str, Any] = {}
        if self._counters_changed and self.counters is not None:
            host["counters"] = self.counters
        if stock:
            host["stock"] = stock
        if self._new_alerts:
            host["alerts"] = self._new_alerts[-(self.alerts.maxlen or 1):]
        if self._new_comments:  # a burst of comments: only as many as the dashboard keeps
            host["comments"] = self._new_comments[-(self.comments.maxlen or 1):]
        if self.console is not self._console_sent and self.console is not None:
            # Only what changed since the view the previous update was made from (usually a few
            # totals, the SKU rows that moved and the current minute); a snapshot carries it whole.
            change = delta(self._console_sent, self.console)
            if change:
                host["console"] = change
            self._console_sent = self.console
        viewer: dict[str, Any] = {"stock": stock} if stock else {}
        if self._pinned_changed:
            host["pinned"] = viewer["pinned"] = self.pinned()
        if self._sales_changed:
            host["sales"] = {sku: self.sales[sku] for sku in sorted(self._sales_changed) if sku in self.sales}
        if host:
            out["host"] = self.channels["host"].publish(host)
        if viewer:
            out["viewer"] = self.channels["viewer"].publish(viewer)
        self._pinned_changed = False
        self._sales_changed = set()
        self._counters_changed = False
        self._stock_changed = set()
        self._new_alerts = []
        self._new_comments = []
        return out

    def snapshot(self, audience: Audience, *, resync: bool = False) -> bytes:
        """Everything ``audience`` may see now, stamped with the channel's current sequence.

        Call after :meth:`flush` so that the snapshot and the next update do not overlap.
        """
        channel = self.channels[audience]
        body: dict[str, Any] = {
            "type": "snapshot", "room": self.room, "epoch": channel.epoch, "seq": channel.seq,
            "resync": resync, "stock": self.stock, "pinned": self.pinned(),
        }
        if audience == "host":
            body.update(counters=self.counters, alerts=list(self.alerts), comments=list(self.comments),
                        series=list(self.series), sales=self.sales, console=self.console)
        return encode(body)

