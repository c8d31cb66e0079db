"""``livecommerce bench gateway [--json]``: many concurrent websocket clients on one gateway process.

On a broker of its own (free loopback ports, temp dir, stopped at the end; or ``--bootstrap``) it
starts one gateway process (``livecommerce gateway``), then ``--client-procs`` client processes
that open ``--clients`` websocket connections in total (one host token per client, spread over ``--rooms`` rooms,
so every client receives the room's counters), plus ``--slow-clients`` that subscribe and then never
read.  Once every client is subscribed, this process produces ``RoomCounters`` for every room at
``--rate`` events per room per second for ``--duration`` seconds, each stamped with the time it is
produced.  Each client records, for every update it receives, ``now - counters.ts``: the latency from
the event being produced to the update being in a client's hands (Kafka + gateway + fan-out +
the client's own event loop, on the same 2 cores).

Reported: ``clients`` (connections the gateway counted at the peak), ``updates_per_s`` delivered
to clients, ``p50_ms``/``p99_ms``, ``rss_mb_per_1000_clients`` (gateway RSS growth from idle to
all connected, per 1000 clients), ``dropped_slow_clients`` (the gateway's counter).  The last line
of output is one JSON object (with ``--json`` it is the only output on stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, free_ports

BENCH_SECRET = "bench-secret-long-enough-for-hs256-0123456789"


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# ------------------------------------------------------------------------------------------- clients


class _BenchClient(asyncio.Protocol):
    """A lean websocket client (RFC 6455 handshake, masked client frames, unmasked server frames).

    Why not ``websockets.connect`` here: the clients share the gateway's 2 cores, and the library's
    per-message machinery made the *clients* the bottleneck at 10,000 connections, which would measure
    the harness instead of the gateway.  The parsing below is enough for the server's small text frames.
    """

    def __init__(self, path: str, host: str, stalled: bool, on_text: Any) -> None:
        self.path, self.host, self.stalled, self.on_text = path, host, stalled, on_text
        self.buffer = bytearray()
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a selector transport
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                        .encode())

    def send_text(self, text: bytes) -> None:
        assert self.transport is not None and len(text) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        self.transport.write(bytes([0x81, 0x80 | len(text)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:12])
            del self.buffer[:end + 4]
            if b" 101" not in status:
                self.open.set_exception(OSError(f"handshake refused: {status!r}"))
                return
            self.open.set_result(None)
            self.send_text(b'{"type":"subscribe"}')
            if self.stalled:
                assert self.transport is not None
                self.transport.pause_reading()
                return
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + length:
                return
            payload = bytes(buf[at:at + length])
            del buf[:at + length]
            if opcode == 0x1:
                self.on_text(payload)
            elif opcode == 0x9 and self.transport is not None:  # ping -> pong (masked, empty mask XOR)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or OSError("connection lost"))


async def _client_main(url: str, count: int, rooms: int, offset: int, slow: int, out: Path) -> None:
    """One client process: ``count`` reading clients and ``slow`` stalled ones; latencies to ``out``."""
    import orjson

    from ws_gateway.auth import mint_token

    _raise_nofile()
    loop = asyncio.get_running_loop()
    now_s = int(time.time())
    # one user per client: the gateway caps connections per user (LC_GATEWAY_MAX_SOCKETS_PER_USER), as a
    # real audience has one or two sockets per person, not thousands on one token
    def token_for(i: int, stalled: bool) -> str:
        room = (offset + i) % rooms
        sub = f"bench-{'slow' if stalled else 'c'}-{offset + i}"
        return mint_token(BENCH_SECRET, sub=sub, role="host", room=f"room-{room}", now_s=now_s, ttl_s=3600)

    hostport = url.split("//", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    latencies: list[int] = []
    window = [0, 2**62]  # measure updates whose counters.ts falls in [start, end]
    received = 0
    connected = 0
    gate = asyncio.Semaphore(100)  # connection attempts in flight
    transports: list[asyncio.Transport] = []

    update_bytes = 0

    def on_text(raw: bytes) -> None:
        nonlocal received, update_bytes
        counters = orjson.loads(raw).get("counters")
        if counters and window[0] <= counters["ts"] <= window[1]:
            received += 1
            update_bytes += len(raw)
            latencies.append(int(time.time() * 1000) - counters["ts"])

    async def open_one(i: int, stalled: bool) -> None:
        nonlocal connected
        tok = token_for(i, stalled)
        async with gate:
            for attempt in range(5):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if stalled:  # a phone on a bad network: tiny receive window, and it stops reading
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (host, int(port)))
                    transport, client = await loop.create_connection(
                        lambda: _BenchClient(f"/ws?token={tok}", hostport, stalled, on_text), sock=sock)
                    await asyncio.wait_for(client.open, 30)
                    transports.append(transport)
                    connected += 1
                    return
                except (OSError, TimeoutError):
                    sock.close()
                    await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(open_one(i, False) for i in range(count)), *(open_one(i, True) for i in range(slow)))
    print(f"READY {connected}", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)  # "GO start_ms end_ms"
    _, start, end = line.split()
    window[0], window[1] = int(start), int(end)
    while time.time() * 1000 < window[1] + 3000:
        await asyncio.sleep(0.2)
    out.write_bytes(orjson.dumps({"connected": connected, "received": received, "latencies": latencies,
                                 "update_bytes": update_bytes}))
    print("DONE", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "EXIT": the gateway's metrics are read before we hang up
    for transport in transports:
        transport.abort()


# ---------------------------------------------------------------------------------------------- main


class _ConsoleFeed:
    """A room's console as the console job would publish it once a second, half an hour into a stream:
    30 minutes of per-minute rows, 8 SKUs, 30 markers, 20 hot words and a benchmark diagnosis; each
    view moves the totals, two SKU rows, the current minute and the hot words, as a busy room does."""

    def __init__(self, room_id: str, start_ms: int) -> None:
        self.room_id = room_id
        self.start = start_ms - start_ms % 60_000 - 30 * 60_000
        self.rows = [[400 + i, 30, 200, 900, 800, 90, 12, 99_000, 5, 2] for i in range(30)]
        self.skus = {f"sku-{k}": [5000, 400, 0.08, 120, 100, 70, 700_000, 0.175] for k in range(8)}
        self.markers: list[list[Any]] = [[self.start + i * 60_000, kind, "sku-0", ""] for i, kind in
                        zip(range(30), ["pin", "sale_open", "restock", "alert", "sold_out"] * 6, strict=True)]
        self.words: list[list[Any]] = [[f"词{k}", 100 - k] for k in range(20)]
        self.n = 0

    def next(self, now: int) -> bytes:
        import msgspec

        from schemas import encode
        from schemas.console import RoomConsoleView, round_for_display

        self.n += 1
        minute = (now - self.start) // 60_000
        while len(self.rows) <= minute:
            self.rows.append([0] * 10)
        self.rows[minute][0] = 500 + self.n % 50
        self.rows[minute][2] += 7
        for k in (self.n % 8, (self.n * 3) % 8):
            row = self.skus[f"sku-{k}"]
            row[0] += 11
            row[1] += 1
            row[2] = row[1] / row[0]
        self.words[self.n % 20][1] += 1
        t = sum(r[0] for r in self.skus.values())
        body = {
            "room_id": self.room_id, "event_ts": now, "pinned": "sku-0", "ts": now,
            "totals": {"viewers": 9000 + self.n, "entries": 12000 + self.n, "impressions": t, "clicks": 3200 + self.n,
                       "ctr": 0.08, "attempts": 960, "accepted": 800, "paid": 560, "gmv_paid_cents": 5_600_000,
                       "buyers": 700, "follows": 300 + self.n // 5, "shares": 90, "comments": 6000 + 7 * self.n,
                       "likes": 27_000 + 30 * self.n, "watch_ms": 10**9 + self.n * 1000, "avg_watch_ms": 110_000.0,
                       "peak_online": 550},
            "skus": self.skus, "sku_fields": ["impressions", "clicks", "ctr", "attempts", "accepted", "paid",
                                              "gmv_paid_cents", "conversion"],
            "sources": {"recommend_feed": 6000 + self.n, "following_feed": 2500, "search": 1500, "short_video": 1200,
                        "ads": 600, "shared_link": 200},
            "followers": {"follower": 3000, "non_follower": 9000 + self.n, "unknown": 0},
            "series": {"start": self.start, "step": 60_000, "fields": ["online", "entries", "comments", "likes",
                       "impressions", "clicks", "orders", "gmv_paid_cents", "follows", "shares"], "rows": self.rows},
            "markers": [*self.markers, [self.start, "online_peak", None, "550"]],
            "headline": {"avg_online": 480.0 + self.n % 7, "ctr": 0.08, "gpm_cents": 600.0},
            "benchmark": {"avg_online": 500.0, "ctr": 0.1, "gpm_cents": 550.0},
            "diagnosis": [{"metric": "ctr", "value": 0.08, "benchmark": 0.1, "gap": -0.2, "level": "red"}],
            "worst": "ctr", "hot_words": sorted(self.words, key=lambda w: -w[1]),
        }
        return encode(msgspec.convert(round_for_display(copy.deepcopy(body)), RoomConsoleView))


def _produce_counters(settings: Any, rooms: int, rate: float, duration: float, console: bool = True) -> int:
    """RoomCounters for every room at ``rate`` per room per second, stamped at produce time, and (with
    ``console``) each room's console view once a second, as the counters and console jobs publish them."""
    from base.kafka import make_producer
    from schemas import TOPICS, RoomCounters, encode

    producer = make_producer(settings, {"linger.ms": 1})
    topic, spec = settings.topic("room-counters"), TOPICS["room-counters"]
    console_topic = settings.topic("room-console")
    feeds = [_ConsoleFeed(f"room-{r}", int(time.time() * 1000)) for r in range(rooms)] if console else []
    produced, began = 0, time.monotonic()
    tick = 1.0 / rate
    step = 0
    next_console = began
    while time.monotonic() - began < duration:
        for r in range(rooms):
            now = int(time.time() * 1000)
            event = RoomCounters(room_id=f"room-{r}", window_start=now - 1000, window_end=now, online=500 + step,
                                 comments=step % 40, comments_total=step, orders_accepted_total=step,
                                 gmv_paid_cents_total=step * 9900, ts=now)
            producer.produce(topic, encode(event), key=spec.key_of(event))
            produced += 1
        if feeds and time.monotonic() >= next_console:
            next_console += 1.0
            for feed in feeds:
                producer.produce(console_topic, feed.next(int(time.time() * 1000)), key=feed.room_id.encode())
        producer.poll(0)
        step += 1
        time.sleep(max(0.0, began + step * tick - time.monotonic()))
    producer.flush(30)
    return produced


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--clients", type=int, default=10_000, help="reading websocket clients in total")
    parser.add_argument("--slow-clients", type=int, default=20, help="clients that subscribe and never read")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="counter events per room per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of measured traffic")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--flush-interval", type=float, default=0.25)
    parser.add_argument("--no-console", action="store_true",
                        help="leave out the rooms' console views (room-console, once a second per room)")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--_client", nargs=6, metavar=("URL", "COUNT", "ROOMS", "OFFSET", "SLOW", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._client:
        url, count, rooms, offset, slow, out = args._client
        asyncio.run(_client_main(url, int(count), int(rooms), int(offset), int(slow), Path(out)))
        return 0

    def say(*parts: object) -> None:
        if not args.json:
            print(*parts, flush=True)

    from base.broker import LocalKafka
    from base.kafka_admin import create_topics
    from base.settings import Settings
    from schemas import TOPICS
    from ws_gateway.runner import GatewayProcess

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the broker and gateway
    hard = _raise_nofile()
    per_proc = -(-args.clients // args.client_procs)
    if per_proc + args.slow_clients + 100 > hard:
        print(json.dumps({"error": f"open-file limit {hard} is below {per_proc} clients per process"}))
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="lc-bench-gateway-"))
    broker: LocalKafka | None = None
    gateway: GatewayProcess | None = None
    procs: list[subprocess.Popen[str]] = []
    try:
        settings = Settings.from_env({}).replace(data_dir=str(workdir), topic_prefix=f"bgw{os.getpid()}.",
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
        gateway = GatewayProcess(settings, "--flush-interval", str(args.flush_interval), "--lookback", "0",
                                 log_path=workdir / "gateway.log").start()
        time.sleep(1.0)
        rss_idle = gateway.rss_mb()
        say(f"gateway on {gateway.url} (RSS {rss_idle:.0f} MB); opening {args.clients} clients "
            f"in {args.client_procs} processes …")
        began = time.monotonic()
        for i in range(args.client_procs):
            count = min(per_proc, args.clients - i * per_proc)
            slow = args.slow_clients // args.client_procs + (1 if i < args.slow_clients % args.client_procs else 0)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "livecommerce.cli", "bench", "gateway", "--_client", gateway.ws_url,
                 str(count), str(args.rooms), str(i * per_proc), str(slow), str(workdir / f"client{i}.json")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            ))
        connected = 0
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("READY"):
                raise RuntimeError(f"client process failed: {line!r}")
            connected += int(line.split()[1])
        connect_s = time.monotonic() - began
        time.sleep(2.0)
        samples = gateway.metrics()
        peak_clients = int(samples.get("lc_gateway_connections", 0))
        rss_loaded = gateway.rss_mb()
        say(f"{connected} connected in {connect_s:.1f} s; gateway counts {peak_clients}, RSS {rss_loaded:.0f} MB; "
            f"producing {args.rate}/s per room for {args.duration:.0f} s …")
        assert gateway.proc is not None
        cpu_before = {"gateway": cpu_seconds(gateway.proc.pid), "clients": sum(cpu_seconds(p.pid) for p in procs)}
        start_ms = int(time.time() * 1000)
        end_ms = start_ms + int(args.duration * 1000)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"GO {start_ms} {end_ms}\n")
            proc.stdin.flush()
        rss_peak = [rss_loaded]

        def watch_rss() -> None:
            while time.time() * 1000 < end_ms:
                rss_peak[0] = max(rss_peak[0], gateway.rss_mb() if gateway else 0.0)
                time.sleep(1.0)

        watcher = threading.Thread(target=watch_rss, daemon=True)
        watcher.start()
        produced = _produce_counters(settings, args.rooms, args.rate, args.duration, console=not args.no_console)
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()  # DONE
        cpu_gateway = cpu_seconds(gateway.proc.pid) - cpu_before["gateway"]
        cpu_clients = sum(cpu_seconds(p.pid) for p in procs) - cpu_before["clients"]
        samples = gateway.metrics()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("EXIT\n")
            proc.stdin.flush()
            proc.wait(timeout=120)
        received, latencies, update_bytes = 0, [], 0
        for i in range(len(procs)):
            data = json.loads((workdir / f"client{i}.json").read_text())
            received += data["received"]
            update_bytes += data["update_bytes"]
            latencies.extend(data["latencies"])
        latencies.sort()
        result = {
            "bench": "gateway",
            "clients": peak_clients,
            "clients_connected_by_bench": connected,
            "slow_clients": args.slow_clients,
            "rooms": args.rooms,
            "connect_s": round(connect_s, 1),
            "events_produced": produced,
            "updates_received": received,
            "updates_per_s": round(received / args.duration, 1),
            "console_views": not args.no_console,
            "mean_update_bytes": round(update_bytes / max(received, 1)),
            "p50_ms": _percentile(latencies, 0.50),
            "p99_ms": _percentile(latencies, 0.99),
            "max_ms": latencies[-1] if latencies else None,
            "rss_mb_idle": round(rss_idle, 1),
            "rss_mb_connected": round(rss_loaded, 1),
            "rss_mb_peak": round(rss_peak[0], 1),
            "rss_mb_per_1000_clients": round((rss_loaded - rss_idle) / max(peak_clients, 1) * 1000, 2),
            "dropped_slow_clients": int(samples.get("lc_gateway_slow_clients_dropped_total", 0)),
            "updates_skipped_for_lagging_clients": int(samples.get("lc_gateway_updates_skipped_total", 0)),
            "gateway_cpu_share": round(cpu_gateway / (args.duration + 3), 2),
            "clients_cpu_share": round(cpu_clients / (args.duration + 3), 2),
            "loadavg_1m": round(os.getloadavg()[0], 1),
            "flush_interval_s": args.flush_interval,
            "rate_per_room": args.rate,
            "duration_s": args.duration,
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(result))
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if gateway is not None:
            gateway.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
