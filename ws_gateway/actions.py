"""Viewer actions become validated Kafka events here, or a refusal that says why. No I/O.

Who: the room and user of every event come from the verified token, never from the frame (a frame
that names ``user_id`` or ``room_id`` does not even parse: the protocol forbids unknown fields), so
a viewer cannot speak, buy, pay or cancel in another room or as another user.

When: the gateway stamps every event with its own clock (``now_ms`` from :func:`base.clock.now_ms`).
A client's ``ts`` is ignored, so one phone's clock (or an attacker's) cannot move event time.

Retries: every id a client chooses is scoped by its user before it reaches Kafka
(:func:`scoped_id`), so two users' keys can never collide and a foreign action never takes the
owner's id.  A retried comment (same ``event_id``) or payment becomes an event with the same id; an
order's ``order_id`` stays the client's own (the flash-sale core scopes it by user and SKU).

Hosts: a ``host_action`` is the only action a host may send, and only hosts may send it (not viewers,
not ops, who watch); it becomes a :class:`schemas.HostAction` (the audit record, topic ``host-actions``)
and, for sale verbs, the :class:`schemas.SaleConfig` of :func:`schemas.host.sale_config_for` (topic
``sale-config``), both in the token's room and with the same event id.  A SKU the gateway knows to be
on sale in another room is refused here (:class:`SkuRooms`); the flash-sale job refuses it anyway.

Refused actions are answered with an error frame and kept as a :class:`schemas.DeadLetter` whose
``source_topic`` is always :data:`DEAD_LETTER_SOURCE`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from schemas import (
    Comment,
    DeadLetter,
    HostAction,
    OrderAttempt,
    OrderResult,
    Payment,
    ProductClick,
    ProductImpression,
    SaleConfig,
    ValidationError,
    validate,
)
from schemas.base import Event
from schemas.host import sale_config_for
from ws_gateway.auth import Claims
from ws_gateway.protocol import (
    Action,
    CancelAction,
    CommentAction,
    HostActionMessage,
    ImpressionAction,
    LikeAction,
    OrderAction,
    PayAction,
    ProductClickAction,
)

ProducedAction = CommentAction | OrderAction | PayAction | CancelAction | ImpressionAction | ProductClickAction
#: The logical topic each client action is produced to (likes after coalescing; a host action goes to
#: ``host-actions`` and, for sale verbs, also to ``sale-config``).
TOPIC_OF: dict[type[Action], str] = {
    CommentAction: "comments", LikeAction: "likes", OrderAction: "orders", PayAction: "payments",
    CancelAction: "payments", ImpressionAction: "impressions", ProductClickAction: "product-clicks",
    HostActionMessage: "host-actions",
}
#: Actions that carry a client ``event_id`` used as the idempotency key.
_KEYED = (CommentAction, LikeAction, ImpressionAction, ProductClickAction, HostActionMessage)
#: The ``source_topic`` of every dead letter the gateway writes (one name, whatever the action).
DEAD_LETTER_SOURCE = "gateway"


class ActionRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def derived_id(*parts: str) -> str:
    """A stable event id from its parts: ``a:b:c`` when that is unambiguous and fits the 64-character Id,
    else a hash of the parts, each prefixed by its length.

    Injective on purpose: user ids and client keys may contain ``:`` themselves, and the plain join
    would then give user ``ev`` with key ``il:x`` and user ``ev:il`` with key ``x`` one id.  The hash
    (40 hex digits, no ``:``) never equals a plain id of two or more parts."""
    plain = ":".join(parts)
    if len(plain) <= 64 and not any(":" in part for part in parts):
        return plain
    encoded = "".join(f"{len(part)}.{part}" for part in parts)
    return hashlib.sha256(encoded.encode()).hexdigest()[:40]


def scoped_id(kind: str, user: str, key: str) -> str:
    """The event id of a client-chosen ``key``: the same for a retry, different for every other user."""
    return derived_id(kind, user, key)


def authorize_action(claims: Claims, action: Action) -> str:
    """The room the action belongs to, or :class:`ActionRejected` (``forbidden_action``): a host action
    only from a host, every other action only from a viewer, always in the token's own room."""
    wanted = "host" if isinstance(action, HostActionMessage) else "viewer"
    if claims.role != wanted or claims.room is None:
        kind = action.__struct_config__.tag
        raise ActionRejected("forbidden_action", f"a {claims.role} connection cannot send {kind} actions")
    return claims.room


def idempotency_key(action: Action, claims: Claims) -> tuple[str, str, str, str] | None:
    """The dedupe key of a comment or like that carries a client ``event_id``: (user, room, kind, id).

    Scoped by user and room, so it holds across the user's reconnects and sockets but never matches
    another user's key.
    """
    if isinstance(action, _KEYED) and action.event_id is not None:
        return (claims.sub, claims.room or "", str(action.__struct_config__.tag), action.event_id)
    return None


def build_event(action: ProducedAction, claims: Claims, *, now_ms: int, new_id: Callable[[], str]) -> Event:
    """The validated event of a viewer action, or :class:`ActionRejected`."""
    room, user = authorize_action(claims, action), claims.sub
    try:
        event: Event
        if isinstance(action, CommentAction):
            event_id = new_id() if action.event_id is None else scoped_id("comment", user, action.event_id)
            event = Comment(event_id=event_id, room_id=room, user_id=user, text=action.text, ts=now_ms)
        elif isinstance(action, ImpressionAction | ProductClickAction):
            kind = "impression" if isinstance(action, ImpressionAction) else "click"
            event_id = new_id() if action.event_id is None else scoped_id(kind, user, action.event_id)
            cls = ProductImpression if isinstance(action, ImpressionAction) else ProductClick
            event = cls(event_id=event_id, room_id=room, sku_id=action.sku_id, user_id=user,
                        placement=action.placement, ts=now_ms)
        elif isinstance(action, OrderAction):
            event = OrderAttempt(order_id=action.order_id, room_id=room, sku_id=action.sku_id, user_id=user,
                                 quantity=action.quantity, ts=now_ms)
        else:
            verb: Literal["paid", "cancelled"] = "paid" if isinstance(action, PayAction) else "cancelled"
            event_id = (derived_id(verb, user, action.sku_id, action.order_id) if action.event_id is None
                        else scoped_id(verb, user, action.event_id))
            event = Payment(event_id=event_id, order_id=action.order_id, room_id=room, sku_id=action.sku_id,
                            user_id=user, action=verb, ts=now_ms)
        return validate(event)
    except ValidationError as exc:
        raise ActionRejected("invalid_action", exc.reason) from None
    except (ValueError, TypeError) as exc:  # __post_init__ checks (empty text after normalisation)
        raise ActionRejected("invalid_action", str(exc)) from None


class SkuRooms:
    """Which room each SKU is on sale in, as far as this gateway has seen (stock and applied sale configs),
    bounded.  Only a early refusal with a clear reason: the flash-sale job is the authority and refuses a
    foreign room's config whatever the gateway knew."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._rooms: OrderedDict[str, str] = OrderedDict()

    def learn(self, sku_id: str, room_id: str) -> None:
        self._rooms[sku_id] = room_id
        self._rooms.move_to_end(sku_id)
        while len(self._rooms) > self.capacity:
            self._rooms.popitem(last=False)

    def room_of(self, sku_id: str) -> str | None:
        return self._rooms.get(sku_id)


def build_host_events(
    action: HostActionMessage, claims: Claims, *, now_ms: int, new_id: Callable[[], str],
    sku_room: Callable[[str], str | None] = lambda _sku: None,
) -> tuple[HostAction, SaleConfig | None]:
    """The audit record of a host's action and the sale command it becomes (None for pins), or
    :class:`ActionRejected`: ``forbidden_action`` unless a host acts in its own room on a SKU not on sale
    in another room; ``invalid_action`` when the terms break :class:`HostAction`'s or
    :class:`SaleConfig`'s rules, or a sale would end before now."""
    room, host = authorize_action(claims, action), claims.sub
    owner = sku_room(action.sku_id)
    if owner is not None and owner != room:
        raise ActionRejected("forbidden_action", f"sku {action.sku_id} is on sale in another room")
    event_id = new_id() if action.event_id is None else scoped_id("host", host, action.event_id)
    try:
        record = validate(HostAction(
            event_id=event_id, room_id=room, host_id=host, action=action.action, sku_id=action.sku_id,
            stock=action.stock, price_cents=action.price_cents, starts_at=action.starts_at,
            ends_at=action.ends_at, per_user_limit=action.per_user_limit,
            reservation_ttl_s=action.reservation_ttl_s, title=action.title, ts=now_ms))
        if record.action == "open_sale" and record.ends_at is not None and record.ends_at <= now_ms:
            raise ValueError("ends_at must be in the future: this sale would already be over")
        config = sale_config_for(record)
        return record, None if config is None else validate(config)
    except ValidationError as exc:
        raise ActionRejected("invalid_action", exc.reason) from None
    except (ValueError, TypeError) as exc:  # __post_init__ checks: missing terms, end before start
        raise ActionRejected("invalid_action", str(exc)) from None


def dead_letter(raw: bytes, reason: str, *, user: str | None, now_ms: int) -> DeadLetter:
    """The record of a refused client frame: never produced to its topic, so partition and offset are -1."""
    return DeadLetter(source_topic=DEAD_LETTER_SOURCE, key=user.encode() if user else None,
                      payload=raw[:64 * 1024], reason=(reason or "rejected")[:2000], ts=now_ms)


class OrderLedger:
    """The last answer per (user, sku, order_id), bounded, so a retried order is answered without a new attempt.

    Keyed like the flash-sale core keys its idempotency, so one user's order id never answers
    another user's order, nor the same id on another SKU.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()

    def record(self, result: OrderResult, message: dict[str, Any]) -> None:
        key = (result.user_id, result.sku_id, result.order_id)
        self._answers[key] = message
        self._answers.move_to_end(key)
        while len(self._answers) > self.capacity:
            self._answers.popitem(last=False)

    def answer(self, user: str, sku: str, order_id: str) -> dict[str, Any] | None:
        return self._answers.get((user, sku, order_id))
