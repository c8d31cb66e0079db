"""Who may connect and what they may see: JWT checks and the subscription rules, no I/O.

A token carries ``sub`` (user id), ``room``, ``role`` (host / viewer / ops) and ``exp``.  Every
refusal maps to its own websocket close code so that a client (and a test) can tell *why* it was
refused without parsing prose:

====  ==================  ====================================================
code  name                meaning
====  ==================  ====================================================
4001  token_missing       no token in ``?token=`` or ``Authorization: Bearer``
4002  token_invalid       bad signature, malformed, unknown role, missing claim
4003  token_expired       ``exp`` is in the past
4004  room_forbidden      a host or viewer asked for a room not in its token
4005  stream_forbidden    a viewer asked for a host-only stream
4008  slow_client         dropped: could not keep up (see :mod:`ws_gateway.backpressure`)
4009  abuse               too many invalid or refused frames (see :mod:`ws_gateway.limits`)
4010  too_many_sockets    the user already has the most connections allowed on this gateway
====  ==================  ====================================================

A token's ``exp`` holds for the whole connection, not only for its handshake: the gateway closes an
open connection with 4003 at ``exp`` even when the client sends nothing (:func:`expiry_plan`).  A
client keeps its connection by renewing in-band with a fresh token of the same user, role and room
(:func:`renew`), as Centrifugo's ``refresh`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import jwt
from jwt.types import Options

from schemas.base import is_file_id

Role = Literal["host", "viewer", "ops"]
ROLES: tuple[Role, ...] = ("host", "viewer", "ops")

#: Streams of a room. Hosts and ops may have all of them; viewers only stock (plus their own orders).
HOST_STREAMS = frozenset({"counters", "stock", "alerts", "comments"})
VIEWER_STREAMS = frozenset({"stock"})
ALGORITHM = "HS256"
#: ``sub`` and ``room`` become event fields (``schemas.base.Id``), so a token must carry ids of that shape.
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
#: How long before ``exp`` the gateway tells a client to renew (at most; half the lifetime for short tokens).
RENEW_AHEAD_S = 30.0
_DECODE_OPTIONS: Options = {
    "verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["sub", "role", "exp"],
}


class CloseCode(IntEnum):
    TOKEN_MISSING = 4001
    TOKEN_INVALID = 4002
    TOKEN_EXPIRED = 4003
    ROOM_FORBIDDEN = 4004
    STREAM_FORBIDDEN = 4005
    SLOW_CLIENT = 4008
    ABUSE = 4009
    TOO_MANY_SOCKETS = 4010


class AuthError(Exception):
    """A refusal: ``code`` is the websocket close code, ``reason`` a short sentence (fits a close frame)."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]


@dataclass(frozen=True)
class Claims:
    """A verified token. ``room`` is ``None`` only for ops tokens, which may watch any room."""

    sub: str
    role: Role
    room: str | None
    exp: int

    @property
    def audience(self) -> Literal["host", "viewer"]:
        """Which cut of a room's updates this client gets: ops see what hosts see."""
        return "viewer" if self.role == "viewer" else "host"

    @property
    def order_results_of(self) -> tuple[str, str] | None:
        """The (room, user) whose order results reach this connection: a viewer's own; nobody else's."""
        return (self.room, self.sub) if self.role == "viewer" and self.room is not None else None


def mint_token(secret: str, *, sub: str, role: Role, room: str | None, now_s: int, ttl_s: int = 3600) -> str:
    """A signed token for ``sub``; ``room`` may be None only for ops."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if room is None and role != "ops":
        raise ValueError(f"a {role} token needs a room")
    payload: dict[str, object] = {"sub": sub, "role": role, "iat": now_s, "exp": now_s + ttl_s}
    if room is not None:
        payload["room"] = room
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str | None, *, now_s: int) -> Claims:
    """The claims of a valid token, or :class:`AuthError` with the close code that says why not.

    ``now_s`` is passed in (PyJWT's own clock checks are switched off) so that exp and nbf are
    decided by the caller's clock, which keeps this function pure.
    """
    if not token:
        raise AuthError(CloseCode.TOKEN_MISSING, "token missing")
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidSignatureError:
        raise AuthError(CloseCode.TOKEN_INVALID, "token signature invalid") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(CloseCode.TOKEN_INVALID, f"token invalid: {exc}") from None
    sub, role, room, exp = payload.get("sub"), payload.get("role"), payload.get("room"), payload.get("exp")
    if not isinstance(sub, str) or not _ID.fullmatch(sub):
        raise AuthError(CloseCode.TOKEN_INVALID, "token sub must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if role not in ROLES:
        raise AuthError(CloseCode.TOKEN_INVALID, f"token role must be one of {', '.join(ROLES)}")
    if not isinstance(exp, int):
        raise AuthError(CloseCode.TOKEN_INVALID, "token exp must be an integer")
    if room is not None and not (isinstance(room, str) and _ID.fullmatch(room)):
        raise AuthError(CloseCode.TOKEN_INVALID, "token room must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if room is None and role != "ops":
        raise AuthError(CloseCode.TOKEN_INVALID, f"a {role} token needs a room")
    if exp <= now_s:
        raise AuthError(CloseCode.TOKEN_EXPIRED, "token expired")
    nbf = payload.get("nbf")
    if isinstance(nbf, int) and nbf > now_s:
        raise AuthError(CloseCode.TOKEN_INVALID, "token not valid yet (nbf)")
    return Claims(sub=sub, role=role, room=room, exp=exp)


def authorize_subscription(
    claims: Claims, room: str | None, streams: Iterable[str] | None
) -> tuple[str, frozenset[str]]:
    """The room and streams this client may subscribe to, or :class:`AuthError`.

    ``room`` None means the token's room; ``streams`` None means everything the role may see.
    Ops may pick any room but must name one.
    """
    target = room if room is not None else claims.room
    if target is None:
        raise AuthError(CloseCode.ROOM_FORBIDDEN, "ops must name a room")
    if claims.role != "ops" and target != claims.room:
        raise AuthError(CloseCode.ROOM_FORBIDDEN, f"token is for room {claims.room}, not {target}")
    allowed = VIEWER_STREAMS if claims.role == "viewer" else HOST_STREAMS
    wanted = allowed if streams is None else frozenset(streams)
    unknown = wanted - HOST_STREAMS
    if unknown:
        raise AuthError(CloseCode.STREAM_FORBIDDEN, f"unknown streams: {', '.join(sorted(unknown))}")
    denied = wanted - allowed
    if denied:
        raise AuthError(CloseCode.STREAM_FORBIDDEN, f"{claims.role} may not receive {', '.join(sorted(denied))}")
    return target, wanted


def is_expired(claims: Claims, now_s: float) -> bool:
    """True from the ``exp`` second on (the same rule as :func:`verify_token`)."""
    return claims.exp <= now_s


@dataclass(frozen=True)
class ExpiryPlan:
    """When (Unix seconds) an open connection is told to renew, and when it is closed with 4003."""

    warn_at: float
    close_at: float


def expiry_plan(claims: Claims, now_s: float, renew_ahead_s: float = RENEW_AHEAD_S) -> ExpiryPlan:
    """Warn ``renew_ahead_s`` before ``exp`` (half-way through what is left for shorter tokens), close at ``exp``.

    Why the gateway warns at all: a client that renews only after the close has already lost its
    connection; one warning frame lets a page fetch a fresh token while the old one still holds.
    """
    remaining = max(claims.exp - now_s, 0.0)
    return ExpiryPlan(warn_at=claims.exp - min(renew_ahead_s, remaining / 2), close_at=float(claims.exp))


def renew(secret: str, current: Claims, token: str | None, *, now_s: int) -> Claims:
    """The claims of a valid renewal token, or :class:`AuthError`.

    A renewal may only extend the same identity: the same ``sub``, ``role`` and ``room``.  Anything
    else would let a connection change who it is without a new handshake (and the gateway's
    per-user limits and order routing were set up for the old identity).
    """
    fresh = verify_token(secret, token, now_s=now_s)
    if (fresh.sub, fresh.role, fresh.room) != (current.sub, current.role, current.room):
        raise AuthError(CloseCode.TOKEN_INVALID, "a renewal token must name the same user, role and room")
    return fresh


# ---------------------------------------------------------------- reports of ended streams

#: URL prefix of the reports the sink writes (``<data_dir>/reports/<room>/<stream_id>.html``).
REPORTS_PREFIX = "/reports/"


@dataclass(frozen=True)
class ReportRoute:
    """``/reports/<room>/`` (the list: ``stream_id`` None) or ``/reports/<room>/<stream_id>.html``."""

    room: str
    stream_id: str | None


def report_route(path: str) -> ReportRoute | None:
    """The report a URL path names, or None when it names none (the gateway answers 404).

    Both ids must be :func:`schemas.base.is_file_id` ids (the shared Id rule, no leading dot), so a
    path can never leave the reports directory: no ``/``, no ``..``, no hidden file, nothing decoded.
    """
    if not path.startswith(REPORTS_PREFIX):
        return None
    parts = path[len(REPORTS_PREFIX):].split("/")
    if len(parts) != 2 or not is_file_id(parts[0]):
        return None
    room, name = parts
    if name == "":
        return ReportRoute(room, None)
    stream_id = name.removesuffix(".html")
    if stream_id == name or not is_file_id(stream_id):
        return None
    return ReportRoute(room, stream_id)


def authorize_report(claims: Claims, room: str) -> None:
    """Reports are for the room's host and for ops; :class:`AuthError` for anyone else.

    A viewer gets ``STREAM_FORBIDDEN`` (the report is host-only, like the counters stream), a host
    of another room ``ROOM_FORBIDDEN``.  The gateway answers both with HTTP 403, token errors with 401.
    """
    if claims.role == "viewer":
        raise AuthError(CloseCode.STREAM_FORBIDDEN, "viewers may not read reports")
    if claims.role != "ops" and claims.room != room:
        raise AuthError(CloseCode.ROOM_FORBIDDEN, f"token is for room {claims.room}, not {room}")


def http_status(error: AuthError) -> int:
    """401 when the token itself is missing, invalid or expired; 403 when it may not see this."""
    return 401 if error.code in (CloseCode.TOKEN_MISSING, CloseCode.TOKEN_INVALID, CloseCode.TOKEN_EXPIRED) else 403
