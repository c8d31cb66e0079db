"""Viewer actions become validated Kafka events here, or a refusal that says why. No I/O.

The room and user of every event come from the verified token, never from the message, so a viewer
cannot speak in another room or as another user.  Events are checked with the shared schemas
(:func:`schemas.validate`) before anything is produced; a refused action is answered with an error
frame and kept as a :class:`schemas.DeadLetter` with its original bytes and the reason.

Retrying is safe: an order's ``order_id`` is the client's idempotency key, and a payment or
cancellation without its own ``event_id`` gets one derived from the order, so a retried frame
produces an event the flash-sale worker recognises as the same one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from schemas import Comment, DeadLetter, OrderAttempt, OrderResult, Payment, ValidationError, validate
from schemas.base import Event
from ws_gateway.auth import Claims
from ws_gateway.protocol import CancelAction, CommentAction, OrderAction, PayAction

ProducedAction = CommentAction | OrderAction | PayAction | CancelAction
TOPIC_OF: dict[type[ProducedAction], str] = {
    CommentAction: "comments", OrderAction: "orders", PayAction: "payments", CancelAction: "payments",
}


class ActionRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def derived_id(*parts: str) -> str:
    """A stable event id from its parts, hashed when the plain form would exceed the 64-character Id."""
    plain = ":".join(parts)
    return plain if len(plain) <= 64 else hashlib.sha256(plain.encode()).hexdigest()[:40]


def build_event(action: ProducedAction, claims: Claims, *, now_ms: int, new_id: Callable[[], str]) -> Event:
    """The validated event of a viewer action, or :class:`ActionRejected`."""
    if claims.role != "viewer" or claims.room is None:
        raise ActionRejected("forbidden_action", f"a {claims.role} connection cannot send actions")
    room, user = claims.room, claims.sub
    try:
        event: Event
        if isinstance(action, CommentAction):
            event = Comment(event_id=action.event_id or new_id(), room_id=room, user_id=user, text=action.text,
                            ts=now_ms)
        elif isinstance(action, OrderAction):
            event = OrderAttempt(order_id=action.order_id, room_id=room, sku_id=action.sku_id, user_id=user,
                                 quantity=action.quantity, ts=now_ms)
        else:
            verb: Literal["paid", "cancelled"] = "paid" if isinstance(action, PayAction) else "cancelled"
            event = Payment(event_id=action.event_id or derived_id(verb, action.order_id), order_id=action.order_id,
                            room_id=room, sku_id=action.sku_id, user_id=user, action=verb, ts=now_ms)
        return validate(event)
    except ValidationError as exc:
        raise ActionRejected("invalid_action", exc.reason) from None
    except (ValueError, TypeError) as exc:  # __post_init__ checks (empty text after normalisation)
        raise ActionRejected("invalid_action", str(exc)) from None


def dead_letter(source_topic: str, raw: bytes, reason: str, *, user: str | None, now_ms: int) -> DeadLetter:
    """The record of a refused client frame: never produced to its topic, so partition and offset are -1."""
    return DeadLetter(source_topic=source_topic[:249] or "gateway", key=user.encode() if user else None,
                      payload=raw[:64 * 1024], reason=(reason or "rejected")[:2000], ts=now_ms)


class OrderLedger:
    """The last answer per (user, order_id), bounded, so a retried order is answered without a new attempt."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def record(self, result: OrderResult, message: dict[str, Any]) -> None:
        key = (result.user_id, result.order_id)
        self._answers[key] = message
        self._answers.move_to_end(key)
        while len(self._answers) > self.capacity:
            self._answers.popitem(last=False)

    def answer(self, user: str, order_id: str) -> dict[str, Any] | None:
        return self._answers.get((user, order_id))
