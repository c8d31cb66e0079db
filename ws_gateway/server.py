"""The gateway process: the asyncio shell around the protocol core.

It only moves data: Kafka batches into :class:`~ws_gateway.rooms.RoomState`, coalesced updates out to
subscribers (asked of :class:`~ws_gateway.backpressure.BufferPolicy` per client, written without
waiting so no client slows another), client frames through :mod:`ws_gateway.protocol`,
:mod:`ws_gateway.auth` and :mod:`ws_gateway.actions` into the idempotent producer.  HTTP routes:
``/`` (the dashboard), ``/healthz`` and ``/metrics``; the websocket endpoint is ``/ws?token=…``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
import uuid
from collections.abc import Iterable
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

from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, Like, OrderResult, encode, validate
from schemas.base import Event
from ws_gateway import metrics as m
from ws_gateway.actions import TOPIC_OF, ActionRejected, OrderLedger, build_event, dead_letter
from ws_gateway.auth import AuthError, Claims, CloseCode, authorize_subscription, verify_token
from ws_gateway.backpressure import BufferPolicy, ClientLag, Verdict
from ws_gateway.config import GatewayConfig
from ws_gateway.hub import Hub
from ws_gateway.kafka_io import Batch, OutputReader, make_producer
from ws_gateway.likes import LikeCoalescer
from ws_gateway.protocol import (
    Action,
    LikeAction,
    OrderAction,
    Ping,
    ProtocolError,
    Subscribe,
    ack,
    error,
    parse_client_message,
)
from ws_gateway.protocol import encode as encode_message
from ws_gateway.ratelimit import TokenBucket
from ws_gateway.rooms import Audience, RoomState

log = get_logger(__name__)
TICK_S = 0.05


def dashboard_html() -> str:
    return resources.files("ws_gateway").joinpath("static/dashboard.html").read_text(encoding="utf-8")


def token_of(request: Request) -> str | None:
    """The JWT of a handshake: ``?token=`` (browsers cannot set headers) or ``Authorization: Bearer``."""
    values = parse_qs(urlsplit(request.path).query).get("token")
    if values:
        return values[0]
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def now_ms() -> int:
    return int(time.time() * 1000)


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


class Gateway:
    def __init__(self, settings: Settings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        self.instance_id = config.instance_id or uuid.uuid4().hex[:12]
        self.epoch = f"{self.instance_id}-{int(time.time())}"
        self.policy = BufferPolicy(config.buffer_high_water, config.buffer_limit, config.max_behind_s)
        self.rooms: dict[str, RoomState] = {}
        self.hub: Hub[ServerConnection] = Hub()
        self.lags: dict[ServerConnection, ClientLag] = {}
        self.likes = LikeCoalescer(config.like_interval_s)
        self.ledger = OrderLedger()
        self.html = dashboard_html()
        self.producer = make_producer(settings)
        self.reader: OutputReader | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._like_seq = 0
        self.origins: frozenset[str | None] = frozenset()

    # ---------------------------------------------------------------- lifecycle

    async def run(self, stop: asyncio.Future[None], ready: asyncio.Future[int] | None = None) -> None:
        """Serve until ``stop`` resolves; ``ready`` receives the bound port."""
        loop = asyncio.get_running_loop()
        self.reader = OutputReader(self.settings, self.instance_id, self.config.lookback_s, loop, self.on_batch)
        self.reader.start()
        ticker = asyncio.create_task(self._tick_forever())
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
                await stop
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self._produce_likes(force=True)
            self.producer.flush(10)
            await asyncio.to_thread(self.reader.stop)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.producer.poll(0)  # runs delivery callbacks (acks, errors) on this thread
            self._produce_likes()
            now = time.monotonic()
            for state in list(self.rooms.values()):
                self._fan_out_all(state, state.flush_due(now, self.config.flush_interval_s))

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
        if path == "/healthz":
            ready = self.reader is not None and self.reader.caught_up.is_set()
            body = msgspec.json.encode({
                "status": "ok" if ready else "starting", "epoch": self.epoch, "connections": len(self.lags),
                "rooms": len(self.rooms), "kafka_error": self.reader.error if self.reader else None,
            }).decode()
            return self._respond(connection, 200 if ready else 503, body, "application/json")
        if path == "/metrics":
            m.CONNECTIONS.set(len(self.lags))
            m.ROOMS.set(len(self.rooms))
            return self._respond(connection, 200, generate_latest().decode(), CONTENT_TYPE_LATEST)
        return self._respond(connection, 404, "not found\n", "text/plain; charset=utf-8")

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
            claims = verify_token(self.config.jwt_secret, token_of(ws.request), now_s=int(time.time()))  # type: ignore[arg-type]
        except AuthError as exc:
            m.AUTH_FAILURES.labels(exc.code.name.lower()).inc()
            await ws.close(exc.code, exc.reason)
            return
        if self.config.socket_send_buffer > 0:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.socket_send_buffer)
        bucket = TokenBucket(self.config.action_rate_per_s, self.config.action_burst)
        self.lags[ws] = ClientLag()
        if claims.role == "viewer" and claims.room is not None:
            self.hub.add_viewer(ws, claims.room, claims.sub)
        try:
            async for raw in ws:
                if ws not in self.lags:  # dropped as a slow client; its close is under way
                    return
                if claims.exp <= time.time():
                    m.AUTH_FAILURES.labels("token_expired").inc()
                    await ws.close(CloseCode.TOKEN_EXPIRED, "token expired")
                    return
                await self._on_frame(ws, claims, bucket, raw)
        except ConnectionClosed:
            pass
        finally:
            self.hub.remove(ws)
            self.lags.pop(ws, None)

    async def _on_frame(self, ws: ServerConnection, claims: Claims, bucket: TokenBucket, raw: str | bytes) -> None:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            self._error(ws, exc.code, exc.message)
            self._dead_letter("gateway", data, f"{exc.code}: {exc.message}", claims.sub)
            return
        if isinstance(message, Ping):
            self._write(ws, encode_message({"type": "pong", "ref": message.ref}), "pong")
        elif isinstance(message, Subscribe):
            try:
                room, _streams = authorize_subscription(claims, message.room, message.streams)
            except AuthError as exc:
                m.AUTH_FAILURES.labels(exc.code.name.lower()).inc()
                await ws.close(exc.code, exc.reason)
                return
            self._subscribe(ws, claims, room, message)
        elif not bucket.allow(time.monotonic()):
            m.ACTIONS.labels(message.__struct_config__.tag, "rate_limited").inc()
            self._error(ws, "rate_limited", "too many actions, slow down", message.ref)
        else:
            self._on_action(ws, claims, message, data)

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

    def _on_action(self, ws: ServerConnection, claims: Claims, action: Action, raw: bytes) -> None:
        kind = action.__struct_config__.tag
        assert isinstance(kind, str)
        if isinstance(action, LikeAction):
            if claims.role != "viewer" or claims.room is None:
                self._reject(ws, claims, kind, raw, ActionRejected("forbidden_action", "only viewers send likes"),
                             action.ref)
                return
            self.likes.add(claims.room, action.count, time.monotonic())
            m.ACTIONS.labels(kind, "accepted").inc()
            if action.ref is not None:
                self._write(ws, ack(kind, action.ref, count=action.count), "ack")
            return
        if isinstance(action, OrderAction):
            known = self.ledger.answer(claims.sub, action.order_id)
            if known is not None and claims.role == "viewer":
                m.ACTIONS.labels(kind, "answered_from_ledger").inc()
                self._write(ws, encode_message(known), "order_result")
                return
        try:
            event = build_event(action, claims, now_ms=now_ms(), new_id=lambda: uuid.uuid4().hex)
        except ActionRejected as exc:
            self._reject(ws, claims, kind, raw, exc, action.ref)
            return
        topic = TOPIC_OF[type(action)]
        ids = {k: getattr(event, k) for k in ("order_id", "event_id") if hasattr(event, k)}
        callback = functools.partial(self._delivered, ws, kind, action.ref, ids)
        if not self._produce(topic, event, callback):
            m.ACTIONS.labels(kind, "overloaded").inc()
            self._error(ws, "overloaded", "the gateway's Kafka queue is full, retry shortly", action.ref)

    def _delivered(self, ws: ServerConnection, kind: str, ref: str | None, ids: dict[str, Any],
                   err: Any, _msg: Any) -> None:
        if err is not None:
            m.ACTIONS.labels(kind, "produce_failed").inc()
            self._error(ws, "produce_failed", f"could not write to Kafka: {err}", ref)
            return
        m.ACTIONS.labels(kind, "accepted").inc()
        self._write(ws, ack(kind, ref, **ids), "ack")

    def _reject(self, ws: ServerConnection, claims: Claims, kind: str, raw: bytes, exc: ActionRejected,
                ref: str | None) -> None:
        m.ACTIONS.labels(kind, exc.code).inc()
        self._error(ws, exc.code, exc.message, ref)
        topic = {"comment": "comments", "order": "orders", "pay": "payments", "cancel": "payments",
                 "like": "likes"}.get(kind, "gateway")
        self._dead_letter(self.settings.topic(topic), raw, f"{exc.code}: {exc.message}", claims.sub)

    # ---------------------------------------------------------------- Kafka out

    def _produce(self, topic: str, event: Event, on_delivery: Any = None) -> bool:
        try:
            self.producer.produce(self.settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event),
                                  on_delivery=on_delivery)
        except BufferError:
            return False
        return True

    def _dead_letter(self, source_topic: str, raw: bytes, reason: str, user: str | None) -> None:
        if self._produce("dead-letters", dead_letter(source_topic, raw, reason, user=user, now_ms=now_ms())):
            m.DEAD_LETTERS.inc()

    def _produce_likes(self, force: bool = False) -> None:
        for room, count in self.likes.due(time.monotonic(), force=force):
            self._like_seq += 1
            like = validate(Like(event_id=f"like-{self.epoch}-{self._like_seq}", room_id=room, user_id=None,
                                 count=count, ts=now_ms()))
            if self._produce("likes", like):
                m.LIKES_PRODUCED.labels("events").inc()
                m.LIKES_PRODUCED.labels("likes").inc(count)

    # ---------------------------------------------------------------- Kafka in

    def on_batch(self, batch: Batch, invalid: int) -> None:
        if invalid:
            m.INVALID_IN.inc(invalid)
        touched: set[str] = set()
        for topic, event in batch:
            m.RECORDS_IN.labels(topic).inc()
            if isinstance(event, OrderResult):
                self._order_result(event)
            else:
                room = str(getattr(event, "room_id"))  # noqa: B009
                self._room(room).apply(event)
                touched.add(room)
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
        now = time.monotonic()
        ready: list[ServerConnection] = []
        snapshot: bytes | None = None
        skipped = 0
        for ws in self.hub.members(state.room, audience):
            lag = self.lags.get(ws)
            if lag is None:
                continue
            buffered = ws.transport.get_write_buffer_size()
            if not buffered and lag.behind_since is None:  # the common case, decided without a call
                ready.append(ws)
                continue
            verdict = self.policy.decide(lag, buffered, now)
            if verdict is Verdict.SEND:
                ready.append(ws)
            elif verdict is Verdict.SKIP:
                skipped += 1
            elif verdict is Verdict.SNAPSHOT:
                snapshot = snapshot or state.snapshot(audience, resync=True)
                self._write(ws, snapshot, "catch_up_snapshot")
            else:
                self._drop(ws)
        write_text_frame(ready, update)
        m.FRAMES_SENT.labels("update").inc(len(ready))
        if skipped:
            m.UPDATES_SKIPPED.inc(skipped)

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
        if self.lags.pop(ws, None) is None:
            return
        self.hub.remove(ws)
        m.SLOW_DROPPED.inc()
        log.info("gateway_slow_client_dropped", remote=str(ws.remote_address),
                 buffered=ws.transport.get_write_buffer_size())
        task = asyncio.create_task(ws.close(CloseCode.SLOW_CLIENT, "slow client: could not keep up"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

