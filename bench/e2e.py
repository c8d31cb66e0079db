"""``livecommerce bench e2e [--json]``: what a streamer feels, from an action produced to the host's screen.

On a broker of its own (free loopback ports, temp dir, stopped at the end; or ``--bootstrap``) it starts
the sentiment, counters and flash-sale workers and one gateway (``livecommerce worker`` / ``gateway``
processes), opens a sale of one SKU per room, and connects one host websocket to room 0.  Then it
produces comments, likes and order attempts straight to Kafka, spread over ``--rooms`` rooms, first at
the demo's rates for ``--duration`` seconds, then at ``--factor`` (5) times them, and measures for each
action of room 0 the time from just before it was produced to the host receiving the update that
includes it:

- a **comment**: the update whose ``comments`` carry its ``event_id`` (through the sentiment job);
- a **like** (count 1): the first ``counters`` whose ``likes_total`` covers it (the counters job's
  1-second windows: a like waits for its window to close, so this includes up to a second by design);
- an **order**: the first ``stock`` of its SKU whose ``reserved + sold`` covers it (the flash-sale
  job's decision; every order is a different buyer of a large stock, so each one is accepted).

The demo's rates (``livecommerce demo``'s defaults: 2 rooms, 800 viewers at the peak, 0.5 comments and
6 like taps per viewer per minute, 500 buyers of the hot SKU per room within about two minutes):
13.3 comments/s, 8 orders/s and 160 like taps/s over both rooms; the gateway coalesces taps into
``Like`` events, so the likes are sent here as 40 events/s of count 1 (one event per tap would measure
a load the gateway never produces).

Everything shares the machine's 2 cores with the broker and the workers: the figures are upper bounds
when anything else runs.  Output: one JSON line per phase; the last line has ``comment_p50_ms``,
``comment_p99_ms``, ``like_p99_ms``, ``order_p99_ms`` and ``offered_per_s`` of the ``--factor`` phase, and the
demo-rate phase's figures under ``demo``.  ``missing_*`` count actions the host never saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import free_ports

BENCH_SECRET = "bench-secret-long-enough-for-hs256-0123456789"
#: Per second over all rooms at the demo's defaults (see the module docstring).
DEMO_RATES = {"comments": 13.3, "likes": 40.0, "orders": 8.0}
TEXTS = ["好看!", "这个多少钱", "太贵了吧", "已下单 yyds", "主播讲得真清楚", "发货太慢了", "nice", "想要同款"]


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Ledger:
    """Produce times of room 0's actions and the latencies matched so far (produced by one thread,
    matched on the event loop: appends and index reads only)."""

    comment_sent: dict[str, int] = field(default_factory=dict)
    like_sent: list[int] = field(default_factory=list)
    order_sent: list[int] = field(default_factory=list)
    comment_ms: list[tuple[int, int]] = field(default_factory=list)  # (sent, latency)
    like_ms: list[tuple[int, int]] = field(default_factory=list)
    order_ms: list[tuple[int, int]] = field(default_factory=list)
    likes_seen: int = 0
    orders_seen: int = 0

    def on_update(self, msg: dict[str, Any], sku: str, now: int) -> None:
        for item in msg.get("comments") or ():
            sent = self.comment_sent.pop(item.get("event_id"), None)
            if sent is not None:
                self.comment_ms.append((sent, now - sent))
        counters = msg.get("counters")
        if counters:
            total = min(counters.get("likes_total", 0), len(self.like_sent))
            for i in range(self.likes_seen, total):
                self.like_ms.append((self.like_sent[i], now - self.like_sent[i]))
            self.likes_seen = max(self.likes_seen, total)
        stock = (msg.get("stock") or {}).get(sku)
        if stock:
            taken = min(stock.get("reserved", 0) + stock.get("sold", 0), len(self.order_sent))
            for i in range(self.orders_seen, taken):
                self.order_ms.append((self.order_sent[i], now - self.order_sent[i]))
            self.orders_seen = max(self.orders_seen, taken)


def _produce(settings: Any, ledger: Ledger, rooms: int, rates: dict[str, float], duration: float,
             seq: dict[str, int]) -> float:
    """Actions at ``rates`` (per second, all rooms) for ``duration`` s, round-robin over rooms; returns
    the offered rate per second."""
    from base.kafka import make_producer
    from schemas import TOPICS, Comment, Like, OrderAttempt, encode

    producer = make_producer(settings, {"linger.ms": 1})
    began = time.monotonic()
    sent = 0
    due = {kind: 0.0 for kind in rates}
    while (elapsed := time.monotonic() - began) < duration:
        for kind, rate in rates.items():
            while due[kind] <= elapsed * rate:
                due[kind] += 1
                n = seq[kind] = seq[kind] + 1
                room = n % rooms
                room_id, now = f"room-{room}", int(time.time() * 1000)
                event: Any
                if kind == "comments":
                    event = Comment(event_id=f"e2e-c{n}", room_id=room_id, user_id=f"fan{n}",
                                    text=TEXTS[n % len(TEXTS)], ts=now)
                    if room == 0:
                        ledger.comment_sent[event.event_id] = now
                    topic = "comments"
                elif kind == "likes":
                    event = Like(event_id=f"e2e-l{n}", room_id=room_id, user_id=f"fan{n}", count=1, ts=now)
                    if room == 0:
                        ledger.like_sent.append(now)
                    topic = "likes"
                else:
                    event = OrderAttempt(order_id=f"e2e-o{n}", room_id=room_id, sku_id=f"sku-{room}",
                                         user_id=f"buyer{n}", quantity=1, ts=now)
                    if room == 0:
                        ledger.order_sent.append(now)
                    topic = "orders"
                producer.produce(settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event))
                sent += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    return sent / duration


def _phase_result(ledger: Ledger, start_ms: int, end_ms: int, offered: float, name: str) -> dict[str, Any]:
    def within(pairs: list[tuple[int, int]]) -> list[int]:
        return [lat for sent, lat in pairs if start_ms <= sent < end_ms]

    comments, likes, orders = within(ledger.comment_ms), within(ledger.like_ms), within(ledger.order_ms)
    sent_comments = sum(1 for t in ledger.comment_sent.values() if start_ms <= t < end_ms)
    return {
        "phase": name, "offered_per_s": round(offered, 1),
        "comment_p50_ms": _percentile(comments, 0.5), "comment_p99_ms": _percentile(comments, 0.99),
        "like_p50_ms": _percentile(likes, 0.5), "like_p99_ms": _percentile(likes, 0.99),
        "order_p50_ms": _percentile(orders, 0.5), "order_p99_ms": _percentile(orders, 0.99),
        "comments_seen": len(comments), "likes_seen": len(likes), "orders_seen": len(orders),
        "missing_comments": sent_comments,
        "missing_likes": sum(1 for t in ledger.like_sent[ledger.likes_seen:] if start_ms <= t < end_ms),
        "missing_orders": sum(1 for t in ledger.order_sent[ledger.orders_seen:] if start_ms <= t < end_ms),
    }


async def _host(url: str, token: str, ledger: Ledger, ready: threading.Event, stop: asyncio.Event) -> None:
    import orjson
    from websockets.asyncio.client import connect

    async with connect(f"{url}?token={token}", open_timeout=60, max_size=None) as ws:
        await ws.send('{"type":"subscribe"}')
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = int(time.time() * 1000)
            msg = orjson.loads(raw)
            if msg.get("type") in ("snapshot", "update"):
                ledger.on_update(msg, "sku-0", now)
                ready.set()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result lines")
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each phase")
    parser.add_argument("--factor", type=float, default=5.0, help="the second phase's rates over the demo's")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    args = parser.parse_args(argv)

    def say(*parts: object) -> None:
        if not args.json:
            print(*parts, file=sys.stderr, flush=True)

    from base.broker import LocalKafka
    from base.kafka import make_producer
    from base.kafka_admin import create_topics
    from base.settings import Settings
    from schemas import TOPICS, Comment, SaleConfig, encode
    from ws_gateway.auth import mint_token
    from ws_gateway.runner import GatewayProcess

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops everything
    workdir = Path(tempfile.mkdtemp(prefix="lc-bench-e2e-"))
    broker: LocalKafka | None = None
    gateway: GatewayProcess | None = None
    procs: list[Any] = []
    try:
        settings = Settings.from_env({}).replace(data_dir=str(workdir), topic_prefix=f"be2e{os.getpid()}.",
                                                 jwt_secret=BENCH_SECRET, partitions=3)
        if args.bootstrap:
            settings = settings.replace(kafka_bootstrap=args.bootstrap)
        else:
            ports = free_ports(2)
            broker = LocalKafka(workdir / "kafka", port=ports[0], controller_port=ports[1], heap="512m")
            say(f"starting Kafka on {broker.bootstrap} …")
            broker.start()
            settings = settings.replace(kafka_bootstrap=broker.bootstrap)
        create_topics(settings, TOPICS.values())
        import subprocess

        env = {**os.environ, **settings.as_env(), "LC_LOG_FORMAT": "console"}
        for job in ("flash-sale", "counters", "sentiment"):
            with (workdir / f"{job}.log").open("ab") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "livecommerce.cli", "worker", job, "--worker-id", "e2e",
                     "--web-port", str(free_ports(1)[0])], env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL))
            say(f"started {job} (log {workdir / f'{job}.log'})")
        gateway = GatewayProcess(settings, "--lookback", "0", log_path=workdir / "gateway.log").start()
        now = int(time.time() * 1000)
        producer = make_producer(settings)
        for r in range(args.rooms):
            cfg = SaleConfig(event_id=f"e2e-sale-{r}", room_id=f"room-{r}", sku_id=f"sku-{r}", action="open",
                             stock=10_000_000, price_cents=9900, starts_at=now - 1000, ends_at=now + 86_400_000,
                             per_user_limit=1, reservation_ttl_s=86_400, ts=now)
            producer.produce(settings.topic("sale-config"), encode(cfg), key=TOPICS["sale-config"].key_of(cfg))
        producer.flush(30)

        ledger = Ledger()
        token = mint_token(BENCH_SECRET, sub="e2e-host", role="host", room="room-0", now_s=int(time.time()),
                           ttl_s=3600)
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        ready = threading.Event()
        host = threading.Thread(target=lambda: loop.run_until_complete(
            _host(gateway.ws_url, token, ledger, ready, stop)), daemon=True)
        host.start()
        if not ready.wait(120):
            raise RuntimeError("the host websocket got no snapshot")
        # warm-up: until a comment makes it through the sentiment worker (model load, group joins)
        say("waiting for the workers to answer …")
        deadline = time.monotonic() + 240
        k = 0
        while time.monotonic() < deadline:
            k += 1
            now = int(time.time() * 1000)
            warm = Comment(event_id=f"e2e-warm{k}", room_id="room-0", user_id="warm", text="你好", ts=now)
            ledger.comment_sent[warm.event_id] = now
            producer.produce(settings.topic("comments"), encode(warm), key=b"room-0")
            producer.flush(10)
            time.sleep(2)
            if ledger.comment_ms:
                break
        else:
            raise RuntimeError(f"no comment reached the host within 240 s; logs in {workdir}")
        ledger.comment_sent.clear()
        del producer  # closed now, not when the broker is already gone
        time.sleep(3)

        seq = {"comments": 0, "likes": 0, "orders": 0}
        results = []
        for name, factor in (("demo", 1.0), (f"{args.factor:g}x", args.factor)):
            rates = {kind: rate * factor for kind, rate in DEMO_RATES.items()}
            say(f"phase {name}: {rates} per second for {args.duration:.0f} s …")
            start_ms = int(time.time() * 1000)
            offered = _produce(settings, ledger, args.rooms, rates, args.duration, seq)
            end_ms = int(time.time() * 1000)
            time.sleep(5)  # stragglers
            result = _phase_result(ledger, start_ms, end_ms, offered, name)
            result["loadavg_1m"] = round(os.getloadavg()[0], 1)
            results.append(result)
            print(json.dumps(result), flush=True)
        loop.call_soon_threadsafe(stop.set)
        host.join(10)
        last = dict(results[-1])
        last.update(bench="e2e", rooms=args.rooms, duration_s=args.duration, cpu_count=os.cpu_count(),
                    demo={k: v for k, v in results[0].items() if k != "phase"})
        print(json.dumps(last), flush=True)
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
        if gateway is not None:
            gateway.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
