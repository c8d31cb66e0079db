"""``livecommerce bench flash-sale [--json]``: one hot SKU on one partition, real broker, real worker.

What it measures, on real parts started here and stopped after:

1. throughput: ``--attempts`` order attempts for one SKU are written to a one-partition ``orders``
   topic first, then one ``livecommerce worker flash-sale`` process decides them;
   ``decisions_per_s`` = answers / (last answer's broker timestamp - first answer's), i.e. the
   worker's steady rate with a full backlog (transactions, changelog and offsets included);
2. latency: ``--offered`` attempts/s for ``--warmup`` (untimed) + ``--seconds`` on a second SKU of the same partition;
   latency = time the answer was consumed (read_committed) - the attempt's ``ts`` stamped when it
   was produced; p50/p99 over all of them;
3. the peer: Debian's ``redis-server`` on a free loopback port (no persistence), and a Lua script
   doing the same decision (idempotent order_id, sale window, per-user limit, stock) over the same
   attempts, pipelined 1,000 per round trip from one client.

Exactness is counted too: accepted units, oversold units (must be 0), lost and duplicated answers.

Where the time goes (``stages``): every timed answer's path is cut at timestamps observable outside the
worker (the attempt's ``ts``, the bench producer's delivery report, the answer's ``ts`` = the worker's
batch start, the answer record's CreateTime = the worker's ``produce()``, and when a read_uncommitted and
a read_committed reader got it) into ``send``, ``fetch_wait``, ``decision``, ``produce`` and ``commit``
(see :mod:`bench.flash_stages`); p50/p99/max of each.  ``stalls`` separates the causes of slow seconds:
the brokers' GC pauses in the timed window (from their ``-Xlog:gc`` files), CPU pressure on the shared
cores (Linux PSI: share of time some runnable task waited for a CPU), the brokers' share of the
machine's CPU with their JIT compiler threads and VM thread apart (``brokers_cpu``, from their threads'
/proc counters: a freshly started JVM's compiler was a quarter of the machine, docs/broker.md), and the
five worst seconds with their slowest stage and the GC time in them.  Kafka forces no log flush
(``log.flush.*`` unset: the page cache absorbs writes), so a flush shows up only as disk-bound
``produce``/``commit`` time.

The ``cluster`` object repeats the phases on three brokers (replication factor 3, min ISR 2), with a
smaller backlog (``--cluster-attempts``), and SIGKILLs the broker leading the hot SKU's ``orders``
partition halfway through the timed phase: its p50/p99/stages cover the answers read before the kill
(the attempts whose answer was still on its way at the kill are counted and their worst wait shown
apart, in ``in_flight_at_kill``: they wait for the failover, which ``failover_s`` measures), and
``failover_s`` is the time from the kill to the first answer to an attempt produced after it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from base.settings import REPO_ROOT, Settings
from bench.common import cpu_seconds, free_ports, thread_cpu_seconds
from bench.flash_stages import (
    Timeline,
    broker_cpu,
    gc_pauses,
    gc_summary,
    percentile,
    stage_summary,
    timelines_of,
    worst_seconds,
)
from schemas import TOPICS, OrderAttempt, OrderResult, SaleConfig, encode

ROOM = "bench-room"

LUA_DECIDE = """
-- KEYS: 1 sale hash (stock, per_user_limit, starts_at, ends_at), 2 answers hash, 3 units-per-user hash
-- ARGV: order_id, user_id, quantity, now_ms
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known then return known end
local sale = redis.call('HMGET', KEYS[1], 'stock', 'per_user_limit', 'starts_at', 'ends_at')
local qty, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local answer
if now < tonumber(sale[3]) then answer = 'rejected:not_started'
elseif now >= tonumber(sale[4]) then answer = 'rejected:ended'
elseif (tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') + qty) > tonumber(sale[2]) then
  answer = 'rejected:user_limit'
elseif qty > tonumber(sale[1]) then answer = 'rejected:sold_out'
else
  redis.call('HINCRBY', KEYS[1], 'stock', -qty)
  redis.call('HINCRBY', KEYS[3], ARGV[2], qty)
  answer = 'accepted'
end
redis.call('HSET', KEYS[2], ARGV[1], answer)
return answer
"""


def _producer(settings: Settings) -> Any:
    from base.kafka import make_producer

    return make_producer(settings, {"linger.ms": 2, "queue.buffering.max.messages": 2_000_000, "log_level": 2})


def _send(prod: Any, settings: Settings, topic: str, event: Any, on_delivery: Any = None) -> None:
    while True:
        try:
            prod.produce(settings.topic(topic), encode(event), TOPICS[topic].key_of(event), on_delivery=on_delivery)
            return
        except BufferError:
            prod.poll(0.01)


def _results_consumer(settings: Settings, isolation: str = "read_committed") -> Any:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from base.kafka import make_consumer

    consumer = make_consumer(settings, f"bench-reader-{isolation}",
                             {"isolation.level": isolation, "fetch.wait.max.ms": 5, "log_level": 2})
    consumer.assign([TopicPartition(settings.topic("order-results"), 0, OFFSET_BEGINNING)])
    return consumer


def bench_topics() -> list[Any]:
    """The registry's topics, ``orders`` stamped with the leader's append time: the bench producer's
    delivery report then says when the broker had the attempt, not when the busy bench loop polled."""
    import dataclasses

    return [dataclasses.replace(spec, config={**spec.config, "message.timestamp.type": "LogAppendTime"})
            if spec.name == "orders" else spec for spec in TOPICS.values()]


def _open_sale(prod: Any, settings: Settings, sku: str, stock: int, now: int) -> None:
    _send(prod, settings, "sale-config", SaleConfig(
        event_id=f"open-{sku}", room_id=ROOM, sku_id=sku, action="open", stock=stock, price_cents=1_000,
        starts_at=now - 60_000, ends_at=now + 3_600_000, per_user_limit=1, reservation_ttl_s=3_600, ts=now,
    ))


class Tally:
    """Answers per order_id, for exactness: lost, duplicated, accepted units, oversold."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], int] = {}
        self.accepted_units: dict[str, int] = {}
        self.decoder = msgspec.json.Decoder(OrderResult)

    def add(self, raw: bytes) -> OrderResult:
        r = self.decoder.decode(raw)
        key = (r.sku_id, r.order_id)
        self.answers[key] = self.answers.get(key, 0) + 1
        if r.status == "accepted" and self.answers[key] == 1:
            self.accepted_units[r.sku_id] = self.accepted_units.get(r.sku_id, 0) + r.quantity
        return r


def throughput(
    settings: Settings, attempts: int, tally: Tally, started: list[subprocess.Popen[bytes]]
) -> tuple[float, float]:
    """Decisions/s of the worker on a backlog of ``attempts`` for one SKU (stock: a quarter of them)."""
    prod = _producer(settings)
    now = int(time.time() * 1000)
    _open_sale(prod, settings, "hot-1", attempts // 4, now)
    for i in range(attempts):
        _send(prod, settings, "orders", OrderAttempt(order_id=f"t{i}", room_id=ROOM, sku_id="hot-1",
                                                     user_id=f"u{i}", ts=now))
    prod.flush(120)
    started.append(_start_worker(settings))
    cpu_before = cpu_seconds(started[-1].pid)
    consumer = _results_consumer(settings)
    first = last = None
    got = 0
    deadline = time.monotonic() + 300
    try:
        while got < attempts and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.2):
                if msg.error() is not None:
                    continue
                tally.add(msg.value())
                got += 1
                ts = msg.timestamp()[1]
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
    finally:
        consumer.close()
    if got < attempts or first is None or last is None or last == first:
        raise RuntimeError(f"throughput phase: {got} of {attempts} answers")
    cpu = cpu_seconds(started[-1].pid) - cpu_before  # includes start-up and restore: an upper bound
    return (attempts - 1) / ((last - first) / 1000), attempts / cpu


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env(), "LC_LOG_FORMAT": "json"}
    log = open(Path(settings.data_dir) / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "livecommerce.cli", "worker", "flash-sale", "--worker-id",
                             "bench", "--web-port", "0"], env=env, cwd=REPO_ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    return proc


@dataclass
class LatencyRun:
    """What one latency phase measured: the answers' latencies, their stage timelines, the failover."""

    p50: float
    p99: float
    offered_total: int
    timelines: list[Timeline]
    window_ms: tuple[float, float]
    cpu_pressure_pct: float | None
    broker_cpu: dict[str, float] | None = None
    failover_s: float | None = None
    longest_gap_s: float | None = None
    killed_node: int | None = None
    in_flight: dict[str, float] | None = None


class _Observations:
    """Per order_id: produce time, delivery report, the answer's stamps, and when each reader got it."""

    def __init__(self) -> None:
        self.attempts: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.produced: dict[str, float] = {}
        self.uncommitted: dict[str, float] = {}
        self.committed: dict[str, float] = {}

    def on_delivery(self, order_id: str) -> Any:
        def delivered(err: Any, msg: Any) -> None:
            if err is None:  # the leader's append time (orders uses LogAppendTime here): not when we polled
                self.acked[order_id] = float(msg.timestamp()[1])
        return delivered


def _cpu_pressure_us() -> int | None:
    """Microseconds some runnable task waited for a CPU so far (Linux PSI), or None without PSI."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first.rsplit("total=", 1)[1])


def latency(
    settings: Settings, offered: int, seconds: float, tally: Tally, warmup: float = 3.0,
    kill: Callable[[], int] | None = None, broker_pids: Sequence[int] = (),
) -> LatencyRun:
    """p50 and p99 (ms) from an attempt's produce time to its answer consumed, at ``offered``/s, and
    every answer's stage timeline (:mod:`bench.flash_stages`).

    The first ``warmup`` seconds of the same traffic are answered and tallied but not timed: the
    results consumer's first fetches and the idle worker's first transactions are a start-up cost
    (the per-second p99 of seconds 0-2 was 150-200 ms), not the steady state the target is about.
    The steady state still has a tail: per-second p99s are mostly 25-100 ms with a 150-400 ms second
    every few seconds; the answer's own produce time shows the wait is before the worker produces it
    (slow transaction commits of 100-155 ms were logged then; a 10 ms retry backoff and batching
    transactions to >= 20 or 50 ms did not remove it).

    ``kill``, if given, is called halfway through the timed phase (it kills a broker and returns its
    node id); p50/p99 then cover the answers read before it (``in_flight`` counts the attempts made
    before it and answered after it, with their longest wait), and ``failover_s`` is the time from the kill
    to the first answer to an attempt produced after it.  ``broker_pids``' threads are read at the
    timed window's start and end for the brokers' CPU share, JIT and VM thread included
    (:func:`bench.flash_stages.broker_cpu`).
    """
    prod = _producer(settings)
    consumer = _results_consumer(settings)
    unconfirmed = _results_consumer(settings, isolation="read_uncommitted")
    from confluent_kafka import TopicPartition

    results = TopicPartition(settings.topic("order-results"), 0)
    _low, high = consumer.get_watermark_offsets(results, timeout=30)
    for reader in (consumer, unconfirmed):  # skip the throughput phase's answers
        reader.assign([TopicPartition(settings.topic("order-results"), 0, high)])
    total = int(offered * (seconds + warmup))
    _open_sale(prod, settings, "hot-2", total // 2, int(time.time() * 1000))
    prod.flush(30)
    time.sleep(1.0)
    seen = _Observations()
    decoder = msgspec.json.Decoder(OrderResult)
    latencies: list[tuple[float, float]] = []  # (attempt ts, latency)
    start = time.monotonic()
    timed_from_ms = time.time() * 1000 + warmup * 1000
    kill_at = start + warmup + seconds / 2 if kill is not None else None
    kill_ms: float | None = None
    killed: int | None = None
    pressure_before: int | None = None
    pressure_from: float | None = None  # when the timed window began (monotonic)
    threads_before: list[dict[str, float]] = []
    sent = 0
    deadline = start + warmup + seconds + 120
    answered = 0
    last_answer = time.monotonic()
    while (sent < total or answered < total) and time.monotonic() < deadline:
        if sent == total and time.monotonic() - last_answer > 60:
            break  # a minute without an answer: the worker is stuck (counted as lost below)
        due = min(total, int((time.monotonic() - start) * offered))
        while sent < due:
            oid = f"l{sent}"
            ts = int(time.time() * 1000)
            seen.attempts[oid] = ts
            event = OrderAttempt(order_id=oid, room_id=ROOM, sku_id="hot-2", user_id=f"v{sent}", ts=ts)
            _send(prod, settings, "orders", event, seen.on_delivery(oid))
            sent += 1
        prod.poll(0)
        if pressure_from is None and time.time() * 1000 >= timed_from_ms:
            pressure_before, pressure_from = _cpu_pressure_us(), time.monotonic()
            threads_before = [thread_cpu_seconds(pid) for pid in broker_pids]
        if kill_at is not None and kill is not None and kill_ms is None and time.monotonic() >= kill_at:
            kill_ms = time.time() * 1000
            killed = kill()
        for msg in unconfirmed.consume(5_000, 0):
            if msg.error() is None:
                seen.uncommitted.setdefault(decoder.decode(msg.value()).order_id, time.time() * 1000)
        for msg in consumer.consume(5_000, 0.001):
            if msg.error() is not None:
                continue
            received = time.time() * 1000
            r = tally.add(msg.value())
            if r.sku_id == "hot-2":
                answered += 1
                last_answer = time.monotonic()
                seen.committed.setdefault(r.order_id, received)
                seen.produced.setdefault(r.order_id, float(msg.timestamp()[1]))  # the worker's produce()
                if r.attempt_ts >= timed_from_ms:
                    latencies.append((r.attempt_ts, received - r.attempt_ts))
    pressure_after = _cpu_pressure_us()
    threads_after = [thread_cpu_seconds(pid) for pid in broker_pids]
    window = (timed_from_ms, time.time() * 1000)
    consumer.close()
    unconfirmed.close()
    prod.flush(30)
    steady = [lat for at, lat in latencies if kill_ms is None or at + lat < kill_ms]
    crossing = [lat for at, lat in latencies if kill_ms is not None and at < kill_ms <= at + lat]
    steady.sort()
    if not steady:
        raise RuntimeError("latency phase: no answers")
    timelines = [t for t in timelines_of(seen.attempts, seen.acked, seen.produced, seen.uncommitted, seen.committed)
                 if t.attempt_ts >= timed_from_ms and (kill_ms is None or t.committed_ms < kill_ms)]
    pressure = brokers = None
    if pressure_from is not None:
        timed_s = time.monotonic() - pressure_from
        brokers = broker_cpu(threads_before, threads_after, timed_s, os.cpu_count() or 1)
        if pressure_before is not None and pressure_after is not None:
            pressure = round(100 * (pressure_after - pressure_before) / 1e6 / timed_s, 1)
    failover = gap = None
    if kill_ms is not None:
        after = [seen.committed[oid] for oid, ts in seen.attempts.items() if ts >= kill_ms and oid in seen.committed]
        failover = round((min(after) - kill_ms) / 1000, 3) if after else None
        reads = sorted([kill_ms, *(at for at in seen.committed.values() if at >= kill_ms)])
        gap = round(max(b - a for a, b in itertools.pairwise(reads)) / 1000, 3) if len(reads) > 1 else None
    return LatencyRun(
        p50=percentile(steady, 0.5), p99=percentile(steady, 0.99), offered_total=total, timelines=timelines,
        window_ms=window, cpu_pressure_pct=pressure, broker_cpu=brokers, failover_s=failover, longest_gap_s=gap,
        killed_node=killed,
        in_flight={"answers": len(crossing), "max_wait_ms": round(max(crossing), 1)} if crossing else None,
    )


def redis_peer(attempts: int, workdir: Path) -> tuple[float, int]:
    """Decisions/s of the Lua script on redis-server for the same attempts; returns (rate, accepted)."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_ports(1)[0]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        now = int(time.time() * 1000)
        client.hset("sale:hot-1", mapping={"stock": attempts // 4, "per_user_limit": 1,
                                           "starts_at": now - 60_000, "ends_at": now + 3_600_000})
        sha = client.script_load(LUA_DECIDE)
        keys = ["sale:hot-1", "answers:hot-1", "units:hot-1"]
        accepted = 0
        started = time.perf_counter()
        for chunk in range(0, attempts, 1_000):
            pipe = client.pipeline(transaction=False)
            for i in range(chunk, min(attempts, chunk + 1_000)):
                pipe.evalsha(sha, 3, *keys, f"t{i}", f"u{i}", 1, now)
            accepted += sum(1 for a in pipe.execute() if a == b"accepted")
        elapsed = time.perf_counter() - started
        return attempts / elapsed, accepted
    finally:
        proc.terminate()
        proc.wait(10)


def stop_workers(started: list[subprocess.Popen[bytes]]) -> None:
    for worker in started:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    started.clear()


def run_figures(
    attempts: int, rate: float, per_cpu_s: float, run: LatencyRun, tally: Tally, gc_logs: list[Path]
) -> dict[str, Any]:
    """The figures of one run (single broker or cluster), in the bench's JSON shape."""
    pauses = [pause for log in gc_logs if log.exists() for pause in gc_pauses(log.read_text(errors="replace"))]
    stock = {"hot-1": attempts // 4, "hot-2": run.offered_total // 2}
    return {
        "attempts": attempts,
        "decisions_per_s": round(rate),
        "worker_decisions_per_cpu_s": round(per_cpu_s),
        "p50_ms": round(run.p50, 2),
        "p99_ms": round(run.p99, 2),
        "stages": stage_summary(run.timelines),
        "stalls": {
            "broker_gc": gc_summary(pauses, *run.window_ms),
            "cpu_pressure_pct": run.cpu_pressure_pct,
            "brokers_cpu": run.broker_cpu,
            "worst_seconds": worst_seconds(run.timelines, pauses),
        },
        "accepted": sum(tally.accepted_units.values()),
        "oversold": sum(max(0, tally.accepted_units.get(s, 0) - n) for s, n in stock.items()),
        "lost_results": attempts + run.offered_total - len(tally.answers),
        "duplicate_results": sum(n - 1 for n in tally.answers.values()),
    }


def _single_broker_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from base.broker import LocalKafka
    from base.kafka_admin import create_topics

    port, controller_port = free_ports(2)
    broker = LocalKafka(workdir / "kafka", port=port, controller_port=controller_port, heap="512m",
                        die_with_parent=True)
    tally = Tally()
    started: list[subprocess.Popen[bytes]] = []
    try:
        broker.start()
        settings = Settings.from_env({}).replace(
            kafka_bootstrap=broker.bootstrap, topic_prefix="bench.", partitions=1, data_dir=str(workdir),
            log_format="json",
        )
        create_topics(settings, bench_topics())
        rate, per_cpu_s = throughput(settings, args.attempts, tally, started)
        run = latency(settings, args.offered, args.seconds, tally, args.warmup,
                      broker_pids=[pid for pid in (broker.pid(),) if pid is not None])
    finally:
        stop_workers(started)
        broker.stop()
    return run_figures(args.attempts, rate, per_cpu_s, run, tally, [broker.gc_log])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench flash-sale", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--attempts", type=int, default=200_000, help="backlog for the throughput phase")
    parser.add_argument("--offered", type=int, default=5_000, help="attempts/s of the latency phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the timed latency phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of untimed traffic before it")
    parser.add_argument("--cluster-attempts", type=int, default=100_000,
                        help="backlog for the three-broker throughput phase")
    parser.add_argument("--no-cluster", action="store_true", help="skip the three-broker run")
    args = parser.parse_args(argv)

    from bench.flash_cluster import cluster_run  # it builds on this module's phases

    workdir = Path(tempfile.mkdtemp(prefix="lc-bench-flash-"))
    try:
        single = _single_broker_run(args, workdir)
        redis_rate, redis_accepted = redis_peer(args.attempts, workdir)
        cluster = None if args.no_cluster else cluster_run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report: dict[str, Any] = {
        "bench": "flash-sale",
        "machine_cpus": os.cpu_count(),
        **{k: v for k, v in single.items() if k not in ("stages", "stalls")},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "offered_per_s": args.offered,
        "latency_timed_s": args.seconds,
        "latency_warmup_s": args.warmup,
        "redis_lua_decisions_per_s": round(redis_rate),
        "redis_lua_accepted": redis_accepted,
        "ratio_vs_redis_lua": round(single["decisions_per_s"] / redis_rate, 3),
        "stages": single["stages"],
        "stalls": single["stalls"],
        "targets": {"decisions_per_s": 20_000, "p50_ms_at_5000_per_s": 30, "p99_ms_at_5000_per_s": 100,
                    "ratio_vs_redis_lua": 1.0},
    }
    if cluster is not None:
        cluster["ratio_vs_redis_lua"] = round(cluster["decisions_per_s"] / redis_rate, 3)
        report["cluster"] = cluster
    if not args.json:
        for key, value in report.items():
            print(f"{key:>28}: {value}")
    print(json.dumps(report))
    exact = [single] + ([cluster] if cluster is not None else [])
    return 0 if all(r["oversold"] == 0 and r["lost_results"] == 0 for r in exact) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
