"""The gateway against a real Kafka broker and real websocket clients (no mocks).

Each test starts its own gateway process(es) on free ports (``ws_gateway.runner.GatewayProcess``) over the
session broker with fresh topics.  Worker outputs (counters, stock, comments, order results) are produced
by the test onto the real broker: that is the gateway's real input.  Waits have generous timeouts and
assert what arrived, never how fast.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from base.settings import Settings
from schemas import TOPICS, Alert, OrderAttempt, OrderResult, RoomCounters, ScoredComment, StockUpdate, decode, encode
from schemas.base import Event
from tests.fixtures.kafka import consume_all
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

pytestmark = pytest.mark.integration
WAIT = 30.0


def token(settings: Settings, role: str, room: str | None, sub: str = "u1", ttl: int = 600,
          secret: str | None = None) -> str:
    return mint_token(secret or settings.jwt_secret, sub=sub, role=role, room=room,  # type: ignore[arg-type]
                      now_s=int(time.time()), ttl_s=ttl)


def produce(settings: Settings, topic: str, *events: Event) -> None:
    from base.kafka import make_producer

    producer = make_producer(settings)
    for event in events:
        producer.produce(settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event))
    assert producer.flush(30) == 0


def now_ms() -> int:
    return int(time.time() * 1000)


def counters(room: str, window_end: int, **values: Any) -> RoomCounters:
    return RoomCounters(room_id=room, window_start=window_end - 1000, window_end=window_end, ts=window_end, **values)


def stock(room: str, sku: str, available: int, reserved: int = 0, sold: int = 0, ts: int | None = None) -> StockUpdate:
    return StockUpdate(room_id=room, sku_id=sku, available=available, reserved=reserved, sold=sold,
                       total=available + reserved + sold, price_cents=9900, ts=ts or now_ms())


async def open_ws(gw: GatewayProcess, tok: str | None, **kwargs: Any) -> ClientConnection:
    url = gw.ws_url if tok is None else f"{gw.ws_url}?token={tok}"
    return await connect(url, open_timeout=WAIT, **kwargs)


async def recv_json(ws: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    return dict(orjson.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def recv_until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool],
                     timeout: float = WAIT) -> list[dict[str, Any]]:
    """Every message until (and including) the first one for which ``done`` is true."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        message = await recv_json(ws, max(deadline - time.monotonic(), 0.01))
        seen.append(message)
        if done(message):
            return seen


async def close_code_of(ws: ClientConnection, timeout: float = WAIT) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed:
        pass
    return ws.close_code


# ----------------------------------------------------------------------------------------------- auth


def test_auth_matrix_each_role_wrong_room_expired_bad_signature_origin(kafka_settings: Settings) -> None:
    s = kafka_settings
    produce(s, "room-counters", counters("r1", now_ms(), online=7))
    produce(s, "stock", stock("r1", "sku-1", 10))

    async def scenario(gw: GatewayProcess) -> None:
        async def refused(tok: str | None, subscribe: dict[str, Any] | None = None) -> int | None:
            async with await open_ws(gw, tok) as ws:
                if subscribe is not None:
                    await ws.send(orjson.dumps(subscribe).decode())
                return await close_code_of(ws)

        assert await refused(None) == 4001
        assert await refused(token(s, "host", "r1", secret="not-the-secret")) == 4002
        assert await refused("not.a.jwt") == 4002
        assert await refused(token(s, "host", "r1", ttl=-5)) == 4003
        assert await refused(token(s, "host", "r1"), {"type": "subscribe", "room": "r2"}) == 4004
        assert await refused(token(s, "viewer", "r1"), {"type": "subscribe", "room": "r2"}) == 4004
        assert await refused(token(s, "viewer", "r1"), {"type": "subscribe", "streams": ["counters"]}) == 4005
        assert await refused(token(s, "ops", None), {"type": "subscribe"}) == 4004  # ops must name the room

        with pytest.raises(InvalidStatus) as refused_origin:
            await open_ws(gw, token(s, "host", "r1"), origin="http://evil.example")
        assert refused_origin.value.response.status_code == 403

        async def snapshot(tok: str, room: str | None = None) -> dict[str, Any]:
            async with await open_ws(gw, tok) as ws:
                await ws.send(orjson.dumps({"type": "subscribe", "room": room}).decode())
                return (await recv_until(ws, lambda m: m["type"] == "snapshot" and bool(m["stock"])))[-1]

        host = await snapshot(token(s, "host", "r1"))
        assert host["room"] == "r1" and host["counters"]["online"] == 7 and "sku-1" in host["stock"]
        ops = await snapshot(token(s, "ops", None, sub="op"), room="r1")
        assert ops["counters"]["online"] == 7
        viewer = await snapshot(token(s, "viewer", "r1"))
        assert viewer["stock"]["sku-1"]["available"] == 10
        assert {"counters", "alerts", "comments", "series"}.isdisjoint(viewer)

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))


def test_viewer_never_receives_host_streams(kafka_settings: Settings) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "viewer", "r1")) as viewer, \
                await open_ws(gw, token(s, "host", "r1", sub="h")) as host:
            for ws in (viewer, host):
                await ws.send('{"type":"subscribe"}')
                assert (await recv_json(ws))["type"] == "snapshot"
            t = now_ms()
            produce(s, "room-counters", counters("r1", t, online=3))
            produce(s, "alerts", Alert(alert_id="a1", room_id="r1", kind="spike", level="warning", message="m", ts=t))
            produce(s, "scored-comments", ScoredComment(event_id="c1", room_id="r1", user_id="u9", text="nice",
                                                        label="positive", score=0.9, confidence=0.9, ts=t))
            produce(s, "stock", stock("r1", "sku-9", 5, ts=t))
            host_streams: set[str] = set()

            def host_has_everything(message: dict[str, Any]) -> bool:
                host_streams.update(k for k in ("counters", "alerts", "comments", "stock") if message.get(k))
                return len(host_streams) == 4

            await recv_until(host, host_has_everything)
            viewer_seen = await recv_until(viewer, lambda m: "sku-9" in m.get("stock", {}))
            assert all(m["type"] == "update" for m in viewer_seen)
            assert all(set(m) == {"type", "room", "epoch", "seq", "stock"} for m in viewer_seen)

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))


# ----------------------------------------------------------------------------- snapshot + sequence resume


def test_snapshot_then_numbered_updates_resume_without_gaps_or_explicit_resync(kafka_settings: Settings) -> None:
    s = kafka_settings
    host = token(s, "host", "r1")
    base = now_ms() - 10_000  # windows that have ended: the gateway ignores outputs stamped ahead of its clock

    async def wait_for_window(ws: ClientConnection, window_end: int) -> list[dict[str, Any]]:
        return await recv_until(ws, lambda m: (m.get("counters") or {}).get("window_end") == window_end)

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, host) as ws:
            await ws.send('{"type":"subscribe"}')
            first = await recv_json(ws)
            assert first["type"] == "snapshot" and first["resync"] is False
            epoch, seq = first["epoch"], first["seq"]
            for i in range(1, 4):  # one event at a time, each awaited: three updates, numbered in order
                produce(s, "room-counters", counters("r1", base + i * 1000, online=i))
                for update in await wait_for_window(ws, base + i * 1000):
                    assert update["type"] == "update" and update["epoch"] == epoch
                    assert update["seq"] == seq + 1
                    seq = update["seq"]
        # away: more windows happen; the channel numbers them while nobody listens
        for i in range(4, 8):
            produce(s, "room-counters", counters("r1", base + i * 1000, online=i))
        async with await open_ws(gw, host) as ws:
            await ws.send(orjson.dumps({"type": "subscribe", "epoch": epoch, "last_seq": seq}).decode())
            resumed = await recv_json(ws)
            # same process, same epoch, history of 256 covers the 4 missed windows: always a resume, never a
            # snapshot; what the gateway had not flushed or read yet follows as live updates, numbered on
            assert resumed["type"] == "resumed", resumed
            assert (resumed["epoch"], resumed["from_seq"]) == (epoch, seq) and resumed["seq"] >= seq
            replay = await wait_for_window(ws, base + 7000)
            assert [m["seq"] for m in replay] == list(range(seq + 1, seq + 1 + len(replay)))
            assert all(m["type"] == "update" and m["epoch"] == epoch for m in replay)
            latest = replay[-1]
            assert latest["counters"]["online"] == 7
        expected_resync = {"type": "snapshot", "room": "r1", "epoch": epoch, "seq": latest["seq"], "resync": True,
                           "counters": latest["counters"]}
        async with await open_ws(gw, host) as ws:  # another process's epoch: an explicit resync snapshot
            await ws.send(orjson.dumps({"type": "subscribe", "epoch": "other-gateway", "last_seq": 3}).decode())
            resync = await recv_json(ws)
            assert {k: resync[k] for k in expected_resync} == expected_resync
            assert [point[0] for point in resync["series"]][-7:] == [base + i * 1000 for i in range(1, 8)]
        async with await open_ws(gw, host) as ws:  # a sequence this gateway never issued: the same resync
            await ws.send(orjson.dumps({"type": "subscribe", "epoch": epoch, "last_seq": 10**9}).decode())
            again = await recv_json(ws)
            assert again == resync

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))


# ----------------------------------------------------------------------- order round trip, two gateways


class OrderResponder:
    """Stands in for the flash-sale worker on the real broker: answers each new order_id once.

    It reads ``orders`` and writes ``order-results`` (keyed by room) and ``stock``, exactly the contract
    of the flash-sale worker as far as the gateway can tell.
    """

    def __init__(self, settings: Settings, stock_total: int = 10) -> None:
        self.settings = settings
        self.available = stock_total
        self.reserved = 0
        self.answered: dict[str, OrderResult] = {}
        self.attempts: list[OrderAttempt] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OrderResponder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        from base.kafka import make_consumer, make_producer

        s = self.settings
        consumer = make_consumer(s, f"responder-{s.topic_prefix}")
        consumer.assign([TopicPartition(s.topic("orders"), p, OFFSET_BEGINNING) for p in range(s.partitions)])
        producer = make_producer(s)
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(num_messages=100, timeout=0.1):
                    if msg.error() is not None:
                        continue
                    attempt = decode(OrderAttempt, msg.value())
                    self.attempts.append(attempt)
                    if attempt.order_id in self.answered:
                        continue
                    self.available -= attempt.quantity
                    self.reserved += attempt.quantity
                    result = OrderResult(order_id=attempt.order_id, room_id=attempt.room_id, sku_id=attempt.sku_id,
                                         user_id=attempt.user_id, status="accepted", quantity=attempt.quantity,
                                         price_cents=9900, attempt_ts=attempt.ts, ts=now_ms())
                    self.answered[attempt.order_id] = result
                    update = stock(attempt.room_id, attempt.sku_id, self.available, self.reserved)
                    for topic, event in (("order-results", result), ("stock", update)):
                        producer.produce(s.topic(topic), encode(event), key=TOPICS[topic].key_of(event))
                    producer.flush(10)
        finally:
            consumer.close()


def test_order_round_trip_with_two_gateways_reaches_only_the_buyer_and_retry_is_safe(
    kafka_settings: Settings,
) -> None:
    s = kafka_settings

    async def order(ws: ClientConnection, order_id: str, first: bool = True) -> list[dict[str, Any]]:
        """Every message until the order's result came (and, for a ``first`` order, its ack), the result
        LAST in the list.  Ack and result can arrive in either order: the ack waits for the gateway's
        delivery report, and under load the flash sale's answer can overtake it (docs/gateway.md)."""
        frame = {"type": "order", "order_id": order_id, "sku_id": "sku-1", "ref": order_id}
        await ws.send(orjson.dumps(frame).decode())
        seen: list[dict[str, Any]] = []
        while not ((not first or any(m["type"] == "ack" and m.get("order_id") == order_id for m in seen))
                   and any(m["type"] == "order_result" and m["order_id"] == order_id for m in seen)):
            seen += await recv_until(ws, lambda m: m["type"] in ("ack", "order_result")
                                     and m.get("order_id") == order_id)
        result = next(m for m in seen if m["type"] == "order_result" and m["order_id"] == order_id)
        return [m for m in seen if m is not result] + [result]

    async def scenario(gw1: GatewayProcess, gw2: GatewayProcess) -> None:
        async with await open_ws(gw1, token(s, "viewer", "r1", sub="alice")) as alice, \
                await open_ws(gw2, token(s, "viewer", "r1", sub="bob")) as bob, \
                await open_ws(gw2, token(s, "viewer", "r1", sub="alice")) as alice_phone:
            for ws in (alice, bob, alice_phone):
                await ws.send('{"type":"subscribe"}')
                assert (await recv_json(ws))["type"] == "snapshot"
            seen_alice = await order(alice, "o-alice-1")
            assert any(m["type"] == "ack" and m["order_id"] == "o-alice-1" for m in seen_alice)
            assert seen_alice[-1]["status"] == "accepted" and seen_alice[-1]["user_id"] == "alice"
            seen_bob = await order(bob, "o-bob-1")
            assert seen_bob[-1]["user_id"] == "bob"
            assert not any(m.get("order_id") == "o-alice-1" for m in seen_bob)  # bob never sees alice's order
            # alice's other connection, on the other gateway, got her result too, and never bob's
            phone = await recv_until(alice_phone, lambda m: m.get("order_id") == "o-alice-1"
                                     and m["type"] == "order_result")
            assert not any(m.get("order_id") == "o-bob-1" for m in phone)
            # retries, on both gateways: the same answer, and no second attempt reaches Kafka
            again = await order(alice, "o-alice-1", first=False)
            assert again[-1] == seen_alice[-1]
            again_phone = await order(alice_phone, "o-alice-1", first=False)
            assert again_phone[-1]["status"] == "accepted"
            # the stock bar of every viewer shows the reservations
            await recv_until(bob, lambda m: (m.get("stock") or {}).get("sku-1", {}).get("reserved") == 2)

    with OrderResponder(s) as responder, GatewayProcess(s, instance_id="gw1") as gw1, \
            GatewayProcess(s, instance_id="gw2") as gw2:
        asyncio.run(scenario(gw1, gw2))
    attempts = [decode(OrderAttempt, m.value()) for m in consume_all(s, "orders")]
    assert sorted(a.order_id for a in attempts) == ["o-alice-1", "o-bob-1"]
    assert {a.order_id: a.user_id for a in attempts} == {"o-alice-1": "alice", "o-bob-1": "bob"}
    assert responder.reserved == 2


# --------------------------------------------------------------------------------------- slow clients


def test_slow_client_is_dropped_and_does_not_slow_the_others(kafka_settings: Settings) -> None:
    s = kafka_settings
    filler = "x" * 480

    async def scenario(gw: GatewayProcess) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone on a bad network
        sock.connect(("127.0.0.1", gw.port))
        slow = await connect(f"{gw.ws_url}?token={token(s, 'host', 'r1', sub='slow')}", sock=sock,
                             max_queue=1, open_timeout=WAIT)
        fast = await open_ws(gw, token(s, "host", "r1", sub="fast"))
        for ws in (slow, fast):
            await ws.send('{"type":"subscribe"}')
        snapshot = await recv_json(fast)
        seq = snapshot["seq"]
        # the slow client now reads nothing; the room is busy with long comments
        batches = 0
        while gw.metrics().get("lc_gateway_slow_clients_dropped_total", 0) < 1 and batches < 200:
            t = now_ms()
            produce(s, "scored-comments", *(
                ScoredComment(event_id=f"c{batches}-{i}", room_id="r1", user_id="u", text=f"{filler} {i}",
                              label="neutral", score=0.0, confidence=0.5, ts=t) for i in range(50)))
            batches += 1
            while True:  # the fast client keeps up, and its sequence has no gap
                try:
                    update = await recv_json(fast, timeout=0.2)
                except TimeoutError:
                    break
                assert update["seq"] == seq + 1
                seq = update["seq"]
        assert gw.metrics()["lc_gateway_slow_clients_dropped_total"] >= 1
        assert seq > snapshot["seq"]
        code = await close_code_of(slow)
        assert code in (4008, 1006)  # 4008 when the close frame got through, 1006 if the gateway had to abort
        await fast.send('{"type":"ping"}')
        assert (await recv_until(fast, lambda m: m["type"] == "pong"))[-1]["type"] == "pong"
        await fast.close()

    with GatewayProcess(s, "--buffer-high-water", "16384", "--buffer-limit", "262144", "--max-behind", "1",
                        "--flush-interval", "0.05", "--sndbuf", "8192") as gw:
        asyncio.run(scenario(gw))


# -------------------------------------------------------------------------------------- malformed input


def test_malformed_input_gets_errors_keeps_the_connection_and_is_dead_lettered(kafka_settings: Settings) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "viewer", "r1", sub="v1")) as ws:
            await ws.send("{not json")
            assert (await recv_json(ws))["code"] == "invalid_json"
            await ws.send('{"type":"teleport"}')
            assert (await recv_json(ws))["code"] == "invalid_message"
            await ws.send('{"type":"order","order_id":"bad id with spaces","sku_id":"s"}')
            assert (await recv_json(ws))["code"] == "invalid_message"
            await ws.send('{"type":"comment","text":"\\u200b   ","ref":"c0"}')
            rejected = await recv_json(ws)
            assert rejected["code"] == "invalid_action" and rejected["ref"] == "c0"
            await ws.send('{"type":"comment","text":"好看!","ref":"c1"}')
            accepted = await recv_until(ws, lambda m: m.get("ref") == "c1")
            assert accepted[-1]["type"] == "ack"
            await ws.send('{"type":"ping","ref":"p"}')
            assert (await recv_json(ws)) == {"type": "pong", "ref": "p"}  # still open and answering
        async with await open_ws(gw, token(s, "viewer", "r1", sub="v2")) as ws:
            await ws.send(orjson.dumps({"type": "comment", "text": "x" * 20_000}).decode())
            assert await close_code_of(ws) == 1009  # larger than the maximum message size

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))
    comments = [m.value() for m in consume_all(s, "comments", expected=1)]
    assert len(comments) == 1 and b'"user_id":"v1"' in comments[0] and b'"room_id":"r1"' in comments[0]
    dead = consume_all(s, "dead-letters", expected=4)
    reasons = [orjson.loads(m.value())["reason"] for m in dead]
    assert len(reasons) == 4
    assert sum(r.startswith("invalid_json") for r in reasons) == 1
    assert sum(r.startswith("invalid_action") for r in reasons) == 1


def test_likes_are_coalesced_and_actions_are_rate_limited(kafka_settings: Settings) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> int:
        async with await open_ws(gw, token(s, "viewer", "r1")) as ws:
            for _ in range(30):
                await ws.send('{"type":"like","count":2}')
            await ws.send('{"type":"ping","ref":"end"}')
            replies = await recv_until(ws, lambda m: m.get("ref") == "end")
            limited = [m for m in replies if m.get("code") == "rate_limited"]
            assert len(limited) == 30 - 10  # burst of 10, the refill during the test is below one token
        async with await open_ws(gw, token(s, "host", "r1", sub="h")) as host:
            await host.send('{"type":"like","ref":"h1"}')
            assert (await recv_json(host))["code"] == "forbidden_action"
        return 10 * 2

    with GatewayProcess(s, "--action-rate", "0.01", "--action-burst", "10", "--like-interval", "0.5") as gw:
        accepted_likes = asyncio.run(scenario(gw))
    likes = [orjson.loads(m.value()) for m in consume_all(s, "likes", expected=1)]
    assert sum(like["count"] for like in likes) == accepted_likes
    assert len(likes) < 10  # coalesced: far fewer events than taps
    assert all(like["user_id"] is None and like["room_id"] == "r1" for like in likes)
