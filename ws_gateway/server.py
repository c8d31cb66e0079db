"""The gateway process: the asyncio shell around the protocol core.

It only moves data: Kafka batches into :class:`~ws_gateway.rooms.RoomState`, coalesced updates out to
subscribers (planned by :func:`~ws_gateway.backpressure.plan_fan_out`, written without waiting so no
client slows another), client frames through :mod:`ws_gateway.protocol`, :mod:`ws_gateway.auth`,
:mod:`ws_gateway.limits`, :mod:`ws_gateway.dedupe` and :mod:`ws_gateway.actions` into the idempotent
producer.  Every decision is in those modules; this one holds sockets, timers and the producer.
HTTP routes: ``/`` (the dashboard), ``/viewer`` (the viewer's buy page), ``/static/<file>`` (the pages'
scripts), ``/reports/<room>/...`` (:mod:`ws_gateway.reports`), ``/healthz`` and ``/metrics``; the websocket endpoint is
``/ws?token=…``.  Background work (the ticker) runs under :class:`~ws_gateway.supervise.Supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from base.clock import now_ms
from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, Like, OrderResult, SaleConfig, StockUpdate, ValidationError, encode, validate
from schemas.base import Event
from ws_gateway import metrics as m
from ws_gateway.actions import (
    TOPIC_OF,
    ActionRejected,
    OrderLedger,
    SkuRooms,
    authorize_action,
    build_event,
    build_host_events,
    dead_letter,
    idempotency_key,
)
from ws_gateway.auth import (
    REPORTS_PREFIX,
    AuthError,
    Claims,
    CloseCode,
    authorize_subscription,
    expiry_plan,
    is_expired,
    renew,
    verify_token,
)
from ws_gateway.backpressure import BufferPolicy, ClientLag, plan_fan_out
from ws_gateway.config import GatewayConfig
from ws_gateway.dedupe import Idempotency, Seen
from ws_gateway.hub import Hub
from ws_gateway.kafka_io import Batch, OutputReader, make_producer
from ws_gateway.likes import LikeBatch, LikeCoalescer
from ws_gateway.limits import LimitConfig, Limits, Strike
from ws_gateway.protocol import (
    Action,
    HostActionMessage,
    LikeAction,
    OrderAction,
    Ping,
    ProtocolError,
    Renew,
    Subscribe,
    ack,
    error,
    parse_client_message,
    ref_of,
)
from ws_gateway.protocol import encode as encode_message
from ws_gateway.reports import report_response
from ws_gateway.rooms import Audience, RoomState
from ws_gateway.supervise import RestartPolicy, Supervisor

log = get_logger(__name__)
TICK_S = 0.05
SWEEP_S = 1.0

DedupeKey = tuple[str, str, str, str]


def wall_s() -> float:
    """Wall-clock seconds from the project's one clock (token ``exp`` is in Unix seconds)."""
    return now_ms() / 1000
Waiter = tuple[ServerConnection, str | None]


class GatewayFailed(RuntimeError):
    """A background task failed more often than the restart policy allows: the process must exit non-zero."""


#: What ``/static/<file>`` may serve: plain names of the package's static scripts and styles, nothing else.
_STATIC_NAME = re.compile(r"[a-z0-9_-]{1,64}\.(js|css)")
_CONTENT_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


def static_text(name: str) -> str:
    return resources.files("ws_gateway").joinpath(f"static/{name}").read_text(encoding="utf-8")


def dashboard_html() -> str:
    return static_text("dashboard.html")


def static_file(path: str) -> tuple[str, str] | None:
    """The body and content type of ``/static/<name>``, or None: only a plain ``.js`` / ``.css`` name that
    exists in ``ws_gateway/static`` (no directories, no dots beyond the extension, so no way out of it)."""
    name = path.removeprefix("/static/")
    match = _STATIC_NAME.fullmatch(name)
    if match is None:
        return None
    try:
        return static_text(name), _CONTENT_TYPES[match.group(1)]
    except (FileNotFoundError, IsADirectoryError):
        return None


def token_of(request: Request) -> str | None:
    """The JWT of a handshake: ``?token=`` (browsers cannot set headers) or ``Authorization: Bearer``."""
    values = parse_qs(urlsplit(request.path).query).get("token")
    if values:
        return values[0]
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def write_text_frame(connections: Iterable[ServerConnection], payload: bytes) -> None:
    """Write one text frame to many connections, serialising the frame once.

    What :func:`websockets.asyncio.server.broadcast` does, minus building the same frame again for
    every connection (measured: most of the fan-out's CPU at 10,000 clients).  Valid because the
    gateway negotiates no extensions (``compression=None``), a server never masks, and it never
    sends fragmented messages; closing or closed connections are skipped like broadcast does.
    """
    frame = Frame(Opcode.TEXT, payload).serialize(mask=False)
    for ws in connections:
        if ws.protocol.state is State.OPEN:
            ws.transport.write(frame)


@dataclass
class Session:
    """One open connection: its current claims (renewal replaces them) and its expiry timers."""

    ws: ServerConnection
    claims: Claims
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


@dataclass
class LikeTicket:
    """Who hears about one accepted like tap once its batch is (or is not) in Kafka."""

    ws: ServerConnection
    ref: str | None
    key: DedupeKey | None
    count: int


class Gateway:
    def __init__(self, settings: Settings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        self.instance_id = config.instance_id or uuid.uuid4().hex[:12]
        self._stopping = asyncio.Event()  # set when the gateway stops: handlers drop queued frames
        self.epoch = f"{self.instance_id}-{int(wall_s())}"
        self.policy = BufferPolicy(config.buffer_high_water, config.buffer_limit, config.max_behind_s)
        self.rooms: dict[str, RoomState] = {}
        self.hub: Hub[ServerConnection] = Hub()
        self.lags: dict[ServerConnection, ClientLag] = {}
        self.sessions: dict[ServerConnection, Session] = {}
        self.likes: LikeCoalescer[LikeTicket] = LikeCoalescer(config.like_interval_s)
        self.ledger = OrderLedger()
        self.sku_rooms = SkuRooms()
        self.limits = Limits(LimitConfig(
            action_rate=config.action_rate_per_s, action_burst=config.action_burst,
            control_rate=config.control_rate_per_s, control_burst=config.control_burst,
            strike_rate=config.strike_rate_per_s, strike_burst=config.strike_burst,
            penalty_s=config.invalid_penalty_s, max_sockets=config.max_sockets_per_user,
        ))
        self.dedupe: Idempotency[DedupeKey, Waiter, dict[str, Any]] = Idempotency(
            config.dedupe_window_s, config.dedupe_capacity)
        self.html = dashboard_html()
        self.viewer_html = static_text("viewer.html")
        self.producer = make_producer(settings, config.produce_timeout_ms)
        self.reader: OutputReader | None = None
        self.restart_policy = RestartPolicy()
        self.supervisor = Supervisor(self.restart_policy, self._on_fatal)
        self._failed: asyncio.Future[tuple[str, BaseException]] | None = None
        self._closing: dict[ServerConnection, asyncio.Task[None]] = {}
        self._like_seq = 0
        self._last_sweep = 0.0
        self.origins: frozenset[str | None] = frozenset()

    # ---------------------------------------------------------------- lifecycle

    async def run(self, stop: asyncio.Future[None], ready: asyncio.Future[int] | None = None) -> None:
        """Serve until ``stop`` resolves; ``ready`` receives the bound port.

        Raises :class:`GatewayFailed` when a background task gave up (see :mod:`ws_gateway.supervise`).
        """
        loop = asyncio.get_running_loop()
        self._failed = loop.create_future()
        self._stopping = asyncio.Event()
        self.reader = OutputReader(self.settings, self.instance_id, self.config.lookback_s, loop,
                                   self.on_batch, self._on_fatal, self.restart_policy)
        self.reader.start()
        self.supervisor.start("ticker", self._tick_forever)
        try:
            async with serve(
                self.handler, self.config.host, self.config.port,
                process_request=self.process_request,
                max_size=self.config.max_message_bytes,
                max_queue=16,
                compression=None,  # per-message deflate costs ~100 KB and CPU per client; frames are small
                ping_interval=20, ping_timeout=20, close_timeout=5,
                backlog=16384,
            ) as server:
                port = server.sockets[0].getsockname()[1]
                self.origins = self.config.allowed_origins(port)
                log.info("gateway_listening", url=f"http://{self.config.host}:{port}/", epoch=self.epoch)
                if ready is not None and not ready.done():
                    ready.set_result(port)
                await asyncio.wait([stop, self._failed], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
                self._stopping.set()  # handlers stop reading queued frames: the close does not wait for them
        finally:
            await self.supervisor.stop()
            self._produce_likes(force=True)
            self.producer.flush(10)
            await asyncio.to_thread(self.reader.stop)
        if self._failed.done():
            name, exc = self._failed.result()
            raise GatewayFailed(f"background task {name} failed {self.restart_policy.max_restarts + 1} times "
                                f"within {self.restart_policy.window_s:.0f} s: {exc}") from exc

    def _on_fatal(self, name: str, exc: BaseException) -> None:
        if self._failed is not None and not self._failed.done():
            self._failed.set_result((name, exc))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._tick()

    def _tick(self) -> None:
        self.producer.poll(0)  # runs delivery callbacks (acks, errors) on this thread
        self._produce_likes()
        now = time.monotonic()
        for state in list(self.rooms.values()):
            self._fan_out_all(state, state.flush_due(now, self.config.flush_interval_s))
        if now - self._last_sweep >= SWEEP_S:
            self._last_sweep = now
            self.limits.sweep(now)
            self.dedupe.expire(now)

    # ---------------------------------------------------------------- HTTP

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            origin = request.headers.get("Origin")
            if origin not in self.origins:  # a page from elsewhere must not ride a viewer's browser
                m.AUTH_FAILURES.labels("origin_forbidden").inc()
                return self._respond(connection, 403, f"origin {origin} not allowed\n", "text/plain; charset=utf-8")
            return None
        if path in ("/", "/dashboard"):
            return self._respond(connection, 200, self.html, "text/html; charset=utf-8")
        if path == "/viewer":  # the token is read by the page and checked by /ws, as for the dashboard
            return self._respond(connection, 200, self.viewer_html, "text/html; charset=utf-8")
        if path.startswith("/static/"):
            found = static_file(path)
            if found is not None:
                return self._respond(connection, 200, *found)
        if path.startswith(REPORTS_PREFIX):
            code, text, kind = report_response(self.settings.reports_dir, self.settings.jwt_secret, path,
                                               token_of(request), int(wall_s()))
            return self._respond(connection, code, text, kind)
        if path == "/healthz":
            status, body = self.health()
            return self._respond(connection, 200 if status in ("ok", "degraded") else 503,
                                 msgspec.json.encode(body).decode(), "application/json")
        if path == "/metrics":
            m.CONNECTIONS.set(len(self.lags))
            m.ROOMS.set(len(self.rooms))
            return self._respond(connection, 200, generate_latest().decode(), CONTENT_TYPE_LATEST)
        return self._respond(connection, 404, "not found\n", "text/plain; charset=utf-8")

    def health(self) -> tuple[str, dict[str, Any]]:
        """``starting`` until the output topics are read up to date; ``failed`` when a background task
        gave up or the Kafka reader thread is gone; ``degraded`` when one failed (and was restarted)
        within the restart window; else ``ok``."""
        now = time.monotonic()
        reader = self.reader
        reader_alive = reader is not None and reader.alive
        reader_recent = (reader is not None and reader.last_failure is not None
                         and now - reader.last_failure < self.restart_policy.window_s)
        if self.supervisor.failed() or (reader is not None and not reader_alive):
            status = "failed"
        elif reader is None or not reader.caught_up.is_set():
            status = "starting"
        elif self.supervisor.degraded(now) or reader_recent:
            status = "degraded"
        else:
            status = "ok"
        return status, {
            "status": status, "epoch": self.epoch, "connections": len(self.lags), "rooms": len(self.rooms),
            "kafka_error": reader.error if reader else None,
            "tasks": {name: h.as_dict(now) for name, h in self.supervisor.tasks.items()},
            "kafka_reader": {"alive": reader_alive, "failures": reader.failures if reader else 0},
        }

    @staticmethod
    def _respond(connection: ServerConnection, status: int, body: str, content_type: str) -> Response:
        response = connection.respond(status, body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "no-store"
        return response

    # ---------------------------------------------------------------- websocket

    async def handler(self, ws: ServerConnection) -> None:
        try:
            claims = verify_token(self.config.jwt_secret, token_of(ws.request),  # type: ignore[arg-type]
                                  now_s=int(wall_s()))
        except AuthError as exc:
            m.AUTH_FAILURES.labels(exc.code.name.lower()).inc()
            await ws.close(exc.code, exc.reason)
            return
        if not self.limits.open_socket(claims.sub):
            m.CLOSED.labels("too_many_sockets").inc()
            await ws.close(CloseCode.TOO_MANY_SOCKETS, "too many connections for this user")
            return
        session = Session(ws, claims)
        try:
            if self.config.socket_send_buffer > 0:
                sock = ws.transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.socket_send_buffer)
            self.sessions[ws] = session
            self.lags[ws] = ClientLag()
            self._schedule_expiry(session)
            if claims.order_results_of is not None:
                self.hub.add_viewer(ws, *claims.order_results_of)
            async for raw in ws:
                if self._stopping.is_set() or ws.state is not State.OPEN:
                    # shutting down, or the client already closed: frames it left queued are not worth
                    # a stop that waits minutes (each throttled frame costs its penalty)
                    return
                if ws not in self.lags:  # closed by the gateway (slow, expired, abusive): let its close finish,
                    await self._closed(ws)  # or returning would close with 1000 first
                    return
                if is_expired(session.claims, wall_s()):
                    self._close(ws, CloseCode.TOKEN_EXPIRED, "token expired", "token_expired")
                    await self._closed(ws)
                    return
                penalty = await self._on_frame(session, raw)
                if ws not in self.lags:
                    await self._closed(ws)
                    return
                if penalty > 0:  # throttle: this socket's next frame is read later; nobody else waits
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=penalty)
        except ConnectionClosed:
            pass
        finally:
            session.cancel_timers()
            self.sessions.pop(ws, None)
            self.hub.remove(ws)
            self.lags.pop(ws, None)
            self.limits.close_socket(claims.sub)

    def _schedule_expiry(self, session: Session) -> None:
        """Warn before ``exp``, close at ``exp`` (idle or not); a renewal reschedules both."""
        session.cancel_timers()
        loop = asyncio.get_running_loop()
        now = wall_s()
        plan = expiry_plan(session.claims, now, self.config.renew_ahead_s)
        session.timers.append(loop.call_later(max(plan.warn_at - now, 0.0), self._warn_expiry, session))
        session.timers.append(loop.call_later(max(plan.close_at - now, 0.0), self._expire, session))

    def _warn_expiry(self, session: Session) -> None:
        if session.ws in self.lags:
            self._write(session.ws, encode_message({"type": "token_expiring", "exp": session.claims.exp}),
                        "token_expiring")

    def _expire(self, session: Session) -> None:
        if is_expired(session.claims, wall_s()):
            m.AUTH_FAILURES.labels("token_expired").inc()
            self._close(session.ws, CloseCode.TOKEN_EXPIRED, "token expired", "token_expired")
        else:  # the clock fired a hair early: try again at exp
            self._schedule_expiry(session)

    async def _on_frame(self, session: Session, raw: str | bytes) -> float:
        """Handle one client frame; returns how long to wait before reading this socket's next one."""
        ws, claims = session.ws, session.claims
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        now = time.monotonic()
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            return self._refuse(session, exc.code, exc.message, ref_of(data), data, now)
        if isinstance(message, Ping):
            if not self.limits.ping(claims.sub, now):
                self._error(ws, "rate_limited", "too many pings", message.ref)
                return self.config.invalid_penalty_s
            self._write(ws, encode_message({"type": "pong", "ref": message.ref}), "pong")
            return 0.0
        if isinstance(message, Subscribe | Renew):
            if not self.limits.control_frame(claims.sub, now):
                return self._refuse(session, "rate_limited", f"too many {message.__struct_config__.tag} frames",
                                    message.ref, None, now)
            if isinstance(message, Renew):
                return self._renew(session, message, now)
            try:
                room, _streams = authorize_subscription(claims, message.room, message.streams)
            except AuthError as exc:
                m.AUTH_FAILURES.labels(exc.code.name.lower()).inc()
                self._close(ws, exc.code, exc.reason, exc.code.name.lower())
                return 0.0
            self._subscribe(ws, claims, room, message)
            return 0.0
        if not self.limits.action(claims.sub, claims.room or "", now):
            m.ACTIONS.labels(message.__struct_config__.tag, "rate_limited").inc()
            self._error(ws, "rate_limited", "too many actions, slow down", message.ref)
            return self.config.invalid_penalty_s  # a flood of valid actions slows its own socket only
        return self._on_action(session, message, data, now)

    def _renew(self, session: Session, message: Renew, now: float) -> float:
        try:
            session.claims = renew(self.config.jwt_secret, session.claims, message.token, now_s=int(wall_s()))
        except AuthError as exc:  # the connection keeps its old expiry; no dead letter: the frame holds a token
            m.RENEWALS.labels("refused").inc()
            return self._refuse(session, "renew_refused", exc.reason, message.ref, None, now)
        m.RENEWALS.labels("renewed").inc()
        self._schedule_expiry(session)
        self._write(session.ws, encode_message({"type": "renewed", "exp": session.claims.exp, "ref": message.ref}),
                    "renewed")
        return 0.0

    def _refuse(self, session: Session, code: str, message: str, ref: str | None, raw: bytes | None,
                now: float) -> float:
        """An invalid or refused frame costs its sender a strike: answered, dead-lettered (``raw``) and
        throttled while strikes last, then the socket is closed (4009) without a dead letter."""
        if self.limits.strike(session.claims.sub, now) is Strike.CLOSE:
            self._close(session.ws, CloseCode.ABUSE, "too many invalid or refused frames", "abuse")
            return 0.0
        self._error(session.ws, code, message, ref)
        if raw is not None:
            self._dead_letter(raw, f"{code}: {message}", session.claims.sub)
        return self.config.invalid_penalty_s

    def _subscribe(self, ws: ServerConnection, claims: Claims, room: str, message: Subscribe) -> None:
        state = self._room(room)
        if state.dirty:
            self._fan_out_all(state, state.flush())  # so the snapshot and the next update never overlap
        audience: Audience = claims.audience
        channel = state.channels[audience]
        replay = None if message.last_seq is None else channel.replay(message.epoch, message.last_seq)
        self.hub.subscribe(ws, room, audience)
        if replay is None:
            self._write(ws, state.snapshot(audience, resync=message.last_seq is not None), "snapshot")
            return
        self._write(ws, encode_message({"type": "resumed", "room": room, "epoch": channel.epoch,
                                        "from_seq": message.last_seq, "seq": channel.seq}), "resumed")
        for update in replay:
            self._write(ws, update, "replay")

    def _on_action(self, session: Session, action: Action, raw: bytes, now: float) -> float:
        ws, claims = session.ws, session.claims
        kind = str(action.__struct_config__.tag)
        try:
            room = authorize_action(claims, action)
        except ActionRejected as exc:
            m.ACTIONS.labels(kind, exc.code).inc()
            return self._refuse(session, exc.code, exc.message, action.ref, raw, now)
        key = idempotency_key(action, claims)
        if isinstance(action, LikeAction):
            if key is not None and not self._first_time(ws, kind, key, action.ref, now):
                return 0.0
            # answered once its batch's delivery report is back: an ack (if it asked: ref or key), or the error
            self.likes.add(room, action.count, now, LikeTicket(ws, action.ref, key, action.count))
            m.ACTIONS.labels(kind, "queued").inc()
            return 0.0
        if isinstance(action, HostActionMessage):
            return self._on_host_action(session, action, raw, key, now)
        if isinstance(action, OrderAction):
            known = self.ledger.answer(claims.sub, action.sku_id, action.order_id)
            if known is not None:
                m.ACTIONS.labels(kind, "answered_from_ledger").inc()
                self._write(ws, encode_message(known), "order_result")
                return 0.0
        try:
            event = build_event(action, claims, now_ms=now_ms(), new_id=lambda: uuid.uuid4().hex)
        except ActionRejected as exc:
            m.ACTIONS.labels(kind, exc.code).inc()
            return self._refuse(session, exc.code, exc.message, action.ref, raw, now)
        if key is not None and not self._first_time(ws, kind, key, action.ref, now):
            return 0.0
        ids = {k: getattr(event, k) for k in ("order_id", "event_id") if hasattr(event, k)}
        callback = functools.partial(self._delivered, ws, kind, action.ref, ids, key)
        if not self._produce(TOPIC_OF[type(action)], event, callback):
            callback("the gateway's Kafka queue is full, retry shortly", None)
        return 0.0

    def _on_host_action(self, session: Session, action: HostActionMessage, raw: bytes, key: DedupeKey | None,
                        now: float) -> float:
        """The audit record to ``host-actions`` and, for sale verbs, the command to ``sale-config``; one ack
        once both delivery reports are back (or one error), and a retried key produces neither again."""
        ws, kind = session.ws, "host_action"
        try:
            record, config = build_host_events(action, session.claims, now_ms=now_ms(),
                                               new_id=lambda: uuid.uuid4().hex, sku_room=self.sku_rooms.room_of)
        except ActionRejected as exc:
            m.ACTIONS.labels(kind, exc.code).inc()
            return self._refuse(session, exc.code, exc.message, action.ref, raw, now)
        if key is not None and not self._first_time(ws, kind, key, action.ref, now):
            return 0.0
        ids = {"event_id": record.event_id, "verb": record.action, "sku_id": record.sku_id}
        writes = [("host-actions", record)] + ([("sale-config", config)] if config is not None else [])
        outcome = _AllDelivered(len(writes), functools.partial(self._delivered, ws, kind, action.ref, ids, key))
        for topic, event in writes:
            if not self._produce(topic, event, outcome.report):
                outcome.report("the gateway's Kafka queue is full, retry shortly", None)
        return 0.0

    def _first_time(self, ws: ServerConnection, kind: str, key: DedupeKey, ref: str | None, now: float) -> bool:
        """True when ``key`` is new; otherwise the retry joins the pending action or is answered now."""
        claim = self.dedupe.claim(key, (ws, ref), now)
        if claim.seen is Seen.NEW:
            return True
        m.DUPLICATES.labels(kind).inc()
        if claim.seen is Seen.DONE:
            self._write(ws, ack(kind, ref, duplicate=True, **(claim.answer or {})), "ack")
        return False

    def _delivered(self, ws: ServerConnection, kind: str, ref: str | None, ids: dict[str, Any],
                   key: DedupeKey | None, err: Any, _msg: Any) -> None:
        """The producer's delivery report: only now is an action acknowledged (or its failure reported)."""
        if key is None:
            waiters: list[Waiter] = [(ws, ref)]
        else:
            waiters = self.dedupe.abandon(key) if err is not None else self.dedupe.settle(key, ids)
        if err is not None:
            m.ACTIONS.labels(kind, "produce_failed").inc()
            for conn, conn_ref in waiters:
                self._error(conn, "produce_failed", f"not written to Kafka, retry: {err}", conn_ref)
            return
        m.ACTIONS.labels(kind, "accepted").inc()
        for conn, conn_ref in waiters:
            self._write(conn, ack(kind, conn_ref, **ids), "ack")

    # ---------------------------------------------------------------- Kafka out

    def _produce(self, topic: str, event: Event, on_delivery: Any = None) -> bool:
        from confluent_kafka import KafkaException

        try:
            self.producer.produce(self.settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event),
                                  on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            log.warning("gateway_produce_refused", topic=topic, error=str(exc))
            return False
        return True

    def _dead_letter(self, raw: bytes, reason: str, user: str | None) -> None:
        if self._produce("dead-letters", dead_letter(raw, reason, user=user, now_ms=now_ms())):
            m.DEAD_LETTERS.inc()

    def _produce_likes(self, force: bool = False) -> None:
        for batch in self.likes.due(time.monotonic(), force=force):
            outcome = _LikeOutcome(self, batch)
            for count in batch.parts:
                self._like_seq += 1
                try:
                    like = validate(Like(event_id=f"like-{self.epoch}-{self._like_seq}", room_id=batch.room,
                                         user_id=None, count=count, ts=now_ms()))
                except ValidationError as exc:
                    outcome.report(exc.reason, None)
                    continue
                if not self._produce("likes", like, outcome.report):
                    outcome.report("the gateway's Kafka queue is full, retry shortly", None)

    def _likes_delivered(self, batch: LikeBatch[LikeTicket], err: Any) -> None:
        if err is None:
            m.LIKES_PRODUCED.labels("events").inc(len(batch.parts))
            m.LIKES_PRODUCED.labels("likes").inc(batch.count)
        for ticket in batch.tickets:
            answer = {"count": ticket.count}
            if ticket.key is None:
                waiters: list[Waiter] = [(ticket.ws, ticket.ref)]
            else:
                waiters = self.dedupe.abandon(ticket.key) if err is not None else self.dedupe.settle(ticket.key,
                                                                                                    answer)
            for conn, ref in waiters:
                if err is None:
                    if ref is not None or ticket.key is not None:
                        self._write(conn, ack("like", ref, **answer), "ack")
                else:
                    self._error(conn, "produce_failed", f"like not written to Kafka, retry: {err}", ref)
        m.ACTIONS.labels("like", "accepted" if err is None else "produce_failed").inc(len(batch.tickets))

    # ---------------------------------------------------------------- Kafka in

    def on_batch(self, batch: Batch, invalid: int) -> None:
        if invalid:
            m.INVALID_IN.inc(invalid)
        touched: set[str] = set()
        for topic, event in batch:
            m.RECORDS_IN.labels(topic).inc()
            try:
                if isinstance(event, OrderResult):
                    self._order_result(event)
                    continue
                if isinstance(event, StockUpdate | SaleConfig):
                    self.sku_rooms.learn(event.sku_id, event.room_id)
                room = str(getattr(event, "room_id"))  # noqa: B009
                if self._room(room).apply(event):
                    touched.add(room)
            except Exception:  # one bad record must not cost the rest of the batch; loud, counted
                m.TASK_FAILURES.labels("apply").inc()
                log.exception("gateway_apply_failed", topic=topic)
        now = time.monotonic()
        for room in touched:  # a quiet room's change goes out now; a busy room's waits for its interval
            state = self.rooms[room]
            self._fan_out_all(state, state.flush_due(now, self.config.flush_interval_s))

    def _order_result(self, result: OrderResult) -> None:
        message = {"type": "order_result", **msgspec.to_builtins(result)}
        self.ledger.record(result, message)
        viewers = self.hub.of_user(result.room_id, result.user_id)
        if viewers:
            data = encode_message(message)
            for ws in list(viewers):
                self._write(ws, data, "order_result")

    def _room(self, room: str) -> RoomState:
        state = self.rooms.get(room)
        if state is None:
            state = self.rooms[room] = RoomState(
                room, self.epoch, history=self.config.history,
                recent_comments=self.config.recent_comments, recent_alerts=self.config.recent_alerts,
            )
        return state

    # ---------------------------------------------------------------- fan-out

    def _fan_out_all(self, state: RoomState, updates: dict[Audience, bytes]) -> None:
        for audience, update in updates.items():
            self._fan_out(state, audience, update)

    def _fan_out(self, state: RoomState, audience: Audience, update: bytes) -> None:
        plan = plan_fan_out(self.hub.members(state.room, audience), self.lags,
                            lambda ws: ws.transport.get_write_buffer_size(), self.policy, time.monotonic())
        write_text_frame(plan.send, update)
        m.FRAMES_SENT.labels("update").inc(len(plan.send))
        if plan.snapshot:
            snapshot = state.snapshot(audience, resync=True)
            for ws in plan.snapshot:
                self._write(ws, snapshot, "catch_up_snapshot")
        if plan.skipped:
            m.UPDATES_SKIPPED.inc(plan.skipped)
        for ws in plan.drop:  # after the writes: dropping changes the membership the plan was made from
            self._drop(ws)

    def _write(self, ws: ServerConnection, data: bytes, kind: str) -> None:
        """Write one frame without waiting; a client past the buffer limit is dropped instead."""
        if ws.transport.get_write_buffer_size() > self.policy.limit:
            self._drop(ws)
            return
        broadcast([ws], data, text=True)
        m.FRAMES_SENT.labels(kind).inc()

    def _error(self, ws: ServerConnection, code: str, message: str, ref: str | None = None) -> None:
        m.CLIENT_ERRORS.labels(code).inc()
        self._write(ws, error(code, message, ref), "error")

    def _drop(self, ws: ServerConnection) -> None:
        if ws in self.lags:
            m.SLOW_DROPPED.inc()
            log.info("gateway_slow_client_dropped", remote=str(ws.remote_address),
                     buffered=ws.transport.get_write_buffer_size())
        self._close(ws, CloseCode.SLOW_CLIENT, "slow client: could not keep up", "slow_client")

    def _close(self, ws: ServerConnection, code: int, reason: str, metric_reason: str) -> None:
        """Stop sending to ``ws`` at once and close it in the background (the close handshake may wait)."""
        if self.lags.pop(ws, None) is None:
            return
        self.hub.remove(ws)
        m.CLOSED.labels(metric_reason).inc()
        task = asyncio.create_task(ws.close(code, reason))
        self._closing[ws] = task
        task.add_done_callback(lambda _task: self._closing.pop(ws, None))

    async def _closed(self, ws: ServerConnection) -> None:
        """Wait for the gateway's own close of ``ws`` (its code, not the handler's 1000, reaches the client)."""
        task = self._closing.get(ws)
        if task is not None:
            await asyncio.shield(task)


class _AllDelivered:
    """Calls ``done(err, None)`` once, when all ``outstanding`` delivery reports are in (the first error wins)."""

    def __init__(self, outstanding: int, done: Any) -> None:
        self.outstanding = outstanding
        self.done = done
        self.error: Any = None

    def report(self, err: Any, _msg: Any) -> None:
        self.outstanding -= 1
        if err is not None and self.error is None:
            self.error = err
        if self.outstanding == 0:
            self.done(self.error, None)


class _LikeOutcome:
    """Collects the delivery reports of one like batch's parts and answers its tickets once, when all are in."""

    def __init__(self, gateway: Gateway, batch: LikeBatch[LikeTicket]) -> None:
        self.gateway = gateway
        self.batch = batch
        self.outstanding = len(batch.parts)
        self.error: Any = None

    def report(self, err: Any, _msg: Any) -> None:
        self.outstanding -= 1
        if err is not None and self.error is None:
            self.error = err
        if self.outstanding == 0:
            self.gateway._likes_delivered(self.batch, self.error)
