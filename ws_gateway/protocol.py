"""The wire protocol between browsers/apps and the gateway: typed client messages, no I/O.

Client -> gateway (JSON text frames, ``type`` selects the message)::

    {"type": "subscribe", "room": "r1", "last_seq": 41, "epoch": "gw-…"}   # room defaults to the token's
    {"type": "comment", "text": "好看!", "ref": "c1", "event_id": "c-7"}   # event_id: idempotency key
    {"type": "like", "count": 3, "event_id": "l-9"}                        # event_id optional
    {"type": "order", "order_id": "o-1", "sku_id": "sku-1", "quantity": 1, "ref": "o1"}
    {"type": "pay" | "cancel", "order_id": "o-1", "sku_id": "sku-1"}
    {"type": "impression" | "product_click", "sku_id": "sku-1", "placement": "pinned", "event_id": "i-3"}
    {"type": "host_action", "action": "open_sale", "sku_id": "sku-1", "stock": 100, "price_cents": 9900,
     "starts_at": 1767225600000, "ends_at": 1767226200000, "event_id": "h-1"}   # hosts only
    {"type": "renew", "token": "<fresh JWT of the same user, role and room>"}
    {"type": "ping"}

Actions may carry the client's ``ts``; it is accepted and ignored (the gateway stamps its own time).
Nothing else names a user or a room: both come from the token.

Gateway -> client: ``snapshot`` / ``update`` (room state with ``epoch`` and ``seq``), ``order_result``,
``ack`` (the action is in Kafka: the producer's delivery report came back), ``error`` (``code`` +
``message``; the connection stays open unless it is then closed with a close code),
``token_expiring`` (renew before ``exp``), ``renewed`` (the new ``exp``), ``pong``.  Why msgspec: one
tagged-union decoder validates a message in about a microsecond, and its error text names the
offending field, which goes back to the client verbatim.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from schemas.base import Id
from schemas.events import HostVerb, Placement

Ref = Annotated[str, msgspec.Meta(max_length=64)]


class ClientMessage(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    """Base of everything a client may send. ``ref`` is echoed in the ack or error it causes."""

    ref: Ref | None = None


class Subscribe(ClientMessage, tag="subscribe"):
    room: Id | None = None
    streams: list[str] | None = None
    last_seq: Annotated[int, msgspec.Meta(ge=0)] | None = None
    epoch: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class ActionMessage(ClientMessage, kw_only=True):
    """Base of the actions. ``ts`` is the client's clock: accepted so that apps may send it, never used."""

    ts: int | None = None


class CommentAction(ActionMessage, tag="comment"):
    text: str
    event_id: Id | None = None
    """The client's idempotency key: a retry with the same key is answered, never produced, again."""


class LikeAction(ActionMessage, tag="like"):
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    event_id: Id | None = None
    """The client's idempotency key, as for comments."""


class OrderAction(ActionMessage, tag="order"):
    order_id: Id
    sku_id: Id
    quantity: int = 1


class PayAction(ActionMessage, tag="pay"):
    order_id: Id
    sku_id: Id
    event_id: Id | None = None


class CancelAction(ActionMessage, tag="cancel"):
    order_id: Id
    sku_id: Id
    event_id: Id | None = None


class ImpressionAction(ActionMessage, tag="impression"):
    """The viewer's page showed a product (the pinned card became visible): the CTR's denominator."""

    sku_id: Id
    placement: Placement = "pinned"
    event_id: Id | None = None
    """The client's idempotency key: one showing counts once however often it is sent."""


class ProductClickAction(ActionMessage, tag="product_click"):
    """The viewer tapped the product (the buy button of the pinned card)."""

    sku_id: Id
    placement: Placement = "pinned"
    event_id: Id | None = None


class HostActionMessage(ActionMessage, tag="host_action"):
    """A host's console action. Only the field shapes are checked here; which terms each verb needs is
    :class:`schemas.HostAction`'s rule (one definition), applied when the event is built.  No room and no
    host id: both come from the token, as for viewers."""

    action: HostVerb
    sku_id: Id
    stock: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    price_cents: Annotated[int, msgspec.Meta(ge=0)] | None = None
    starts_at: Annotated[int, msgspec.Meta(ge=0)] | None = None
    ends_at: Annotated[int, msgspec.Meta(ge=0)] | None = None
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    reservation_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] | None = None
    title: Annotated[str, msgspec.Meta(max_length=800)] | None = None
    event_id: Id | None = None
    """The console's idempotency key: a retried click with the same key is answered, never produced, again."""


class Ping(ClientMessage, tag="ping"):
    pass


class Renew(ClientMessage, tag="renew"):
    """In-band renewal: a fresh token of the same identity moves the connection's expiry."""

    token: Annotated[str, msgspec.Meta(max_length=4096)]


Action = (CommentAction | LikeAction | OrderAction | PayAction | CancelAction | ImpressionAction | ProductClickAction
          | HostActionMessage)
AnyClientMessage = Subscribe | Action | Ping | Renew

_decoder: msgspec.json.Decoder[AnyClientMessage] = msgspec.json.Decoder(AnyClientMessage)
_encoder = msgspec.json.Encoder()


class ProtocolError(ValueError):
    """A client message that cannot be understood. ``code`` is ``invalid_json`` or ``invalid_message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_message(raw: str | bytes) -> AnyClientMessage:
    """Decode one client frame, or :class:`ProtocolError` saying what is wrong with it."""
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_message", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("invalid_json", f"not valid JSON: {exc}") from None


class _RefOnly(msgspec.Struct):
    ref: Ref | None = None


_ref_decoder = msgspec.json.Decoder(_RefOnly)


def ref_of(raw: bytes) -> str | None:
    """The ``ref`` of a frame that did not parse as a message, if it has a usable one, so that the client
    can match the error to what it sent."""
    try:
        return _ref_decoder.decode(raw).ref
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def encode(message: dict[str, Any]) -> bytes:
    """JSON bytes of a gateway message (sent as a text frame)."""
    return _encoder.encode(message)


def error(code: str, message: str, ref: str | None = None) -> bytes:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        body["ref"] = ref
    return encode(body)


def ack(action: str, ref: str | None, **fields: Any) -> bytes:
    return encode({"type": "ack", "action": action, "ref": ref, **fields})
