"""``livecommerce bench pipeline [--json]``: the counters job against its upper bound and its peer.

On a broker of its own (free ports, temp dir, stopped at the end) it loads the same mixed room
traffic (simulated presence, comments, likes, plus scored comments and order results derived from
the simulated comments, orders and payments) into the input topics, then measures, one at a time:

1. ``baseline_confluent_loop_events_per_s``: a plain confluent-kafka consume + orjson + dict count
   per room and window: what Python can do with no state, no output, no guarantee (upper bound);
2. ``events_per_s``: one counters :class:`~streams.runtime.runner.Runner` in this process, exactly
   once (transactions + changelog), every committed event and snapshot inserted into embedded
   ClickHouse (chdb raw tables) before the next batch;
3. ``quix_events_per_s``: Quix Streams (its own venv: quixstreams pins confluent-kafka < 2.13) on
   the same topics: a 1-s tumbling window per room (count, likes, orders, GMV) plus cumulative
   counters in its RocksDB state, at-least-once;
4. ``p50_ms`` / ``p99_ms``: a worker process (``livecommerce worker counters``) fed live traffic
   stamped with the current time at ``--live-rate`` events/s; latency of each snapshot is the time
   it is readable (``read_committed``) minus its window's end.

The last line of output is one JSON object (with ``--json`` it is the only output on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson

from base.settings import REPO_ROOT, Settings
from bench.common import free_ports
from schemas import TOPICS, OrderAttempt, OrderResult, Payment, encode
from schemas.base import Event
from schemas.events import Comment, ScoredComment
from sentiment.labels import Label
from streams.counters.job import INPUTS

QUIX_PYTHON = REPO_ROOT / ".lc" / "quix-venv" / "bin" / "python"
Message = tuple[str, bytes, bytes]  # logical topic, key, value


@contextlib.contextmanager
def bench_broker(bootstrap: str | None) -> Iterator[Settings]:
    """Settings on a fresh broker (or ``bootstrap``) with a unique topic prefix and all topics made."""
    from base.broker import LocalKafka
    from base.kafka_admin import create_topics, delete_topics

    tmp = Path(tempfile.mkdtemp(prefix="lc-bench-"))
    broker = None
    try:
        if bootstrap is None:
            port, controller = free_ports(2)
            broker = LocalKafka(tmp / "kafka", port=port, controller_port=controller, die_with_parent=True)
            broker.start()
            bootstrap = broker.bootstrap
        settings = Settings.from_env({}).replace(
            kafka_bootstrap=bootstrap, topic_prefix=f"bench{int(time.time())}.", data_dir=str(tmp),
            partitions=3, log_level="WARNING",
        )
        create_topics(settings, TOPICS.values())
        yield settings
        if broker is None:
            with contextlib.suppress(Exception):
                delete_topics(settings)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- traffic -------------------------------------------------------------------------------------


def derived(event: Event, orders: dict[str, OrderAttempt]) -> Event | None:
    """What the sentiment and flash-sale jobs would add for ``event`` (a stand-in, not their logic)."""
    if isinstance(event, Comment):
        h = hashlib.blake2b(event.event_id.encode(), digest_size=1).digest()[0]
        label: Label = ("positive", "neutral", "negative")[h % 3]
        score = {"positive": 0.8, "neutral": 0.0, "negative": -0.7}[label]
        return ScoredComment(event_id=event.event_id, room_id=event.room_id, user_id=event.user_id,
                             text=event.text, label=label, score=score, confidence=0.9, ts=event.ts)
    if isinstance(event, OrderAttempt):
        first = event.order_id not in orders
        orders.setdefault(event.order_id, event)
        return OrderResult(order_id=event.order_id, room_id=event.room_id, sku_id=event.sku_id,
                           user_id=event.user_id, status="accepted" if first else "rejected",
                           reason=None if first else "duplicate", quantity=event.quantity,
                           price_cents=4990, attempt_ts=event.ts, ts=event.ts)
    if isinstance(event, Payment) and event.action == "paid" and event.order_id in orders:
        order = orders[event.order_id]
        return OrderResult(order_id=event.order_id, room_id=event.room_id, sku_id=event.sku_id,
                           user_id=event.user_id, status="paid", quantity=order.quantity,
                           price_cents=4990, attempt_ts=order.ts, ts=event.ts)
    return None


def mixed_events(count: int, rooms: int = 10) -> list[Event]:
    """About ``count`` counters-input events: a 5-minute simulated stream of ``rooms`` rooms (sized so
    that its flash sales fall inside) with its valid events and the derived ones, in wire order."""
    from simulator.config import ScenarioConfig
    from simulator.generator import Simulation

    sim = Simulation(ScenarioConfig(
        seed=7, rooms=rooms, duration_s=300, peak_viewers=max(50, count // (rooms * 20)), like_rate=3.0,
        buyers=max(50, count // (rooms * 20)), stock=500, start_ts=int(time.time() * 1000) - 400_000,
    ))
    orders: dict[str, OrderAttempt] = {}
    out: list[Event] = []
    inputs = {"comments", "likes", "presence"}
    for item in sim:
        if item.event is None:
            continue
        if item.topic in inputs:
            out.append(item.event)
        extra = derived(item.event, orders)
        if extra is not None:
            out.append(extra)
        if len(out) >= count:
            break
    return out


TOPIC_OF = {"comment": "comments", "like": "likes", "presence": "presence",
            "scored_comment": "scored-comments", "order_result": "order-results", "stock": "stock"}


def topic_of(event: Event) -> str:
    """The logical topic of a bench event (by its type tag)."""
    return TOPIC_OF[str(type(event).__struct_config__.tag)]


def to_messages(events: list[Event]) -> list[Message]:
    return [(topic_of(e), e.room_id.encode(), encode(e)) for e in events]  # type: ignore[attr-defined]


def producer(settings: Settings) -> Any:
    from base.kafka import make_producer

    return make_producer(settings, {"linger.ms": 20, "batch.num.messages": 10_000,
                                    "queue.buffering.max.messages": 1_000_000})


def produce_all(settings: Settings, messages: list[Message]) -> None:
    p = producer(settings)
    names = {name: settings.topic(name) for name in INPUTS}
    for topic, key, value in messages:
        while True:
            try:
                p.produce(names[topic], value, key)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("could not load the bench traffic into Kafka")


# ---- 1. the plain loop ---------------------------------------------------------------------------


def confluent_loop(settings: Settings, expected: int) -> dict[str, float]:
    """Consume-and-count with no state, output or guarantee: the upper bound of any Python job here."""
    from base.kafka import make_consumer

    c = make_consumer(settings, f"{settings.topic_prefix}plain")
    c.subscribe([settings.topic(t) for t in INPUTS])
    counts: Counter[tuple[bytes, int]] = Counter()
    seen, start, cpu = 0, 0.0, 0.0
    loads = orjson.loads
    while seen < expected:
        batch = c.consume(num_messages=1000, timeout=0.5)
        if batch and not start:
            start, cpu = time.perf_counter(), time.process_time()
        for msg in batch:
            value, key = msg.value(), msg.key()
            if msg.error() is None and value is not None and key is not None:
                event = loads(value)
                counts[(key, event["ts"] // 1000)] += event.get("count", 1)
                seen += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    c.close()
    return {"events_per_s": seen / elapsed, "events_per_cpu_s": seen / cpu}


# ---- 2. the counters worker, into ClickHouse -----------------------------------------------------


class ClickHouseTap:
    """The project's ClickHouse writer (:class:`~warehouse.writer.WarehouseWriter`), embedded: each
    committed batch (events and snapshots) is inserted into embedded ClickHouse before the worker
    goes on."""

    def __init__(self, data_dir: str) -> None:
        from warehouse.client import get_client
        from warehouse.writer import WarehouseWriter

        self.sink = WarehouseWriter(get_client(f"chdb://{data_dir}/clickhouse"), "lc_bench", "bench")
        self.sink.start()
        self.rows = 0

    def __call__(self, events: list[Event], snapshots: list[Any]) -> None:
        self.rows += self.sink.write(itertools.chain(events, snapshots))


def counters_worker(settings: Settings, expected: int, clickhouse: bool) -> dict[str, Any]:
    """The counters job on the runtime, observed through the runner's commit hook."""
    from streams.counters.job import RUNNER_CONFIG, counters_job
    from streams.runtime.runner import Checkpoint, Runner

    tap = ClickHouseTap(settings.data_dir) if clickhouse else None
    marks: dict[str, float] = {}
    done = [0]

    def on_commit(checkpoint: Checkpoint) -> None:
        events = checkpoint.events
        if tap is not None:
            tap(events, [event for _, event in checkpoint.outputs])
        if not done[0]:
            marks["start"], marks["first"] = time.perf_counter(), len(events)
            marks["cpu"] = time.process_time()
        done[0] += len(events)
        if done[0] >= expected:
            marks["end"], marks["cpu"] = time.perf_counter(), time.process_time() - marks["cpu"]
            runner.stop_event.set()

    runner = Runner(settings, counters_job(), "bench", RUNNER_CONFIG, on_commit=on_commit)
    runner.run()
    counted = done[0] - marks["first"]
    return {"events_per_s": counted / (marks["end"] - marks["start"]),
            "events_per_cpu_s": counted / marks["cpu"], "events": done[0], "snapshots": runner.stats["outputs"],
            "commits": runner.stats["commits"], "clickhouse_rows": tap.rows if tap else 0}


# ---- 3. the peer ---------------------------------------------------------------------------------

QUIX_APP = r'''
import json, sys, time
from quixstreams import Application
bootstrap, prefix, expected, state_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
inputs = ["comments", "likes", "presence", "scored-comments", "order-results", "stock"]
app = Application(broker_address=bootstrap, consumer_group=prefix + "quix", auto_offset_reset="earliest",
                  state_dir=state_dir, loglevel="WARNING",
                  consumer_extra_config={"fetch.queue.backoff.ms": 1})
ts_of = lambda value, headers, timestamp, kind: value["ts"]
frames = [app.dataframe(app.topic(prefix + t, value_deserializer="json", timestamp_extractor=ts_of))
          for t in inputs]
sdf = frames[0]
for other in frames[1:]:
    sdf = sdf.concat(other)
seen = {"n": 0, "start": 0.0, "end": 0.0}
def count(value):
    if not seen["n"]:
        seen["start"], seen["cpu"] = time.perf_counter(), time.process_time()
    seen["n"] += 1
    if seen["n"] == expected:
        seen["end"], seen["cpu"] = time.perf_counter(), time.process_time() - seen["cpu"]
        app.stop()
def cumulative(value, state):
    t = value.get("type")
    if t == "comment":
        state.set("comments", state.get("comments", 0) + 1)
    elif t == "like":
        state.set("likes", state.get("likes", 0) + value["count"])
    elif t == "order_result" and value["status"] == "paid":
        state.set("gmv_paid", state.get("gmv_paid", 0) + value["price_cents"] * value["quantity"])
def reducer(agg, v):
    t = v.get("type")
    if t == "comment": agg["comments"] += 1
    elif t == "like": agg["likes"] += v["count"]
    elif t == "order_result":
        if v["status"] in ("accepted", "rejected"): agg["attempts"] += 1
        if v["status"] == "accepted": agg["accepted"] += 1
        if v["status"] == "paid": agg["gmv_paid"] += v["price_cents"] * v["quantity"]
    elif t == "scored_comment":
        agg["sentiment_sum"] += v["score"]; agg["sentiment_n"] += 1
    return agg
def init(v):
    return reducer({"comments": 0, "likes": 0, "attempts": 0, "accepted": 0, "gmv_paid": 0,
                    "sentiment_sum": 0.0, "sentiment_n": 0}, v)
sdf = sdf.update(count)
sdf = sdf.update(cumulative, stateful=True)
sdf = sdf.tumbling_window(1000, grace_ms=200).reduce(reducer, init).final()
sdf = sdf.to_topic(app.topic(prefix + "quix-counters", value_serializer="json"))
app.run()
print(json.dumps({"events": seen["n"], "events_per_s": seen["n"] / (seen["end"] - seen["start"]),
                  "events_per_cpu_s": seen["n"] / seen["cpu"]}))
'''


def quix(settings: Settings, expected: int) -> dict[str, Any]:
    if not QUIX_PYTHON.exists():
        return {"error": f"no Quix Streams venv at {QUIX_PYTHON} (quixstreams pins confluent-kafka < 2.13)"}
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    from base.kafka import make_admin

    make_admin(settings).create_topics(
        [NewTopic(settings.topic("quix-counters"), num_partitions=3, replication_factor=settings.replication_factor)]
    )
    state = Path(settings.data_dir) / "quix-state"
    proc = subprocess.run(
        [str(QUIX_PYTHON), "-c", QUIX_APP, settings.kafka_bootstrap, settings.topic_prefix, str(expected),
         str(state)],
        capture_output=True, text=True, timeout=1800, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout)[-800:]}
    return dict(json.loads(lines[-1]))


# ---- 4. freshness under live traffic -------------------------------------------------------------


def live_latency(settings: Settings, template: list[Event], rate: int, seconds: float) -> dict[str, Any]:
    """Live traffic at ``rate``/s into a worker process; latency of snapshots after their window closed."""
    from confluent_kafka import OFFSET_END, TopicPartition

    from base.kafka import make_consumer

    env = {**os.environ, **settings.as_env(), "LC_LOG_LEVEL": "INFO", "LC_LOG_FORMAT": "json"}
    log = open(Path(settings.data_dir) / "live-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.cli", "worker", "counters", "--worker-id", "live",
         "--web-port", str(free_ports(1)[0])], env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    latencies: list[float] = []
    emitted: list[float] = []  # window end -> the worker built the snapshot (the rest is commit + fetch)
    stop = threading.Event()
    # Only windows that closed while traffic flowed count: the last ones close by idle advance.
    started_ms, stopped_ms = [2**62], [2**62]
    topic = settings.topic("room-counters")
    consumer = make_consumer(settings, f"{topic}-watch", {"isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(settings.partitions)])

    def watch() -> None:
        while not stop.is_set():
            for msg in consumer.consume(num_messages=500, timeout=0.1):
                value = msg.value()
                if msg.error() is None and value is not None:
                    now = time.time() * 1000
                    snap = orjson.loads(value)
                    live_window = started_ms[0] <= snap["window_start"] and snap["window_end"] <= stopped_ms[0]
                    if live_window and snap["comments"] + snap["likes"] > 0:
                        latencies.append(now - snap["window_end"])
                        emitted.append(snap["ts"] - snap["window_end"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        time.sleep(3)  # worker joins the group and restores its state
        p = producer(settings)
        names = {name: settings.topic(name) for name in INPUTS}
        replace = msgspec.structs.replace
        start = time.perf_counter()
        started_ms[0] = int(time.time() * 1000) + 1000
        sent = 0
        for event in itertools.cycle(template):
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            ahead = sent / rate - elapsed
            if ahead > 0.002:
                p.poll(ahead)
            live = replace(event, ts=int(time.time() * 1000))
            p.produce(names[topic_of(live)], encode(live), live.room_id.encode())  # type: ignore[attr-defined]
            sent += 1
            if sent % 1000 == 0:
                p.poll(0)
        stopped_ms[0] = int(time.time() * 1000)
        p.flush(30)
        achieved = sent / (time.perf_counter() - start)
        time.sleep(2)  # the last windows close (allowed lateness, then idle advance) and commit
    finally:
        stop.set()
        watcher.join(5)
        consumer.close()
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    stopped = [line for line in (Path(settings.data_dir) / "live-worker.log").read_text().splitlines()
               if "counters_stopped" in line]
    worker_stats = json.loads(stopped[-1]) if stopped and stopped[-1].startswith("{") else {}
    if not latencies:
        return {"error": "no snapshot seen", "live_rate": achieved}
    latencies.sort()
    emitted.sort()
    return {"p50_ms": statistics.median(latencies), "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
            "emit_p50_ms": statistics.median(emitted), "emit_p99_ms": emitted[int(0.99 * (len(emitted) - 1))],
            "snapshots": len(latencies), "live_events_per_s": achieved,
            "worker": {k: v for k, v in worker_stats.items() if k in ("events", "commits", "commit_ms_total",
                                                                     "commit_ms_max", "snapshots")}}


# ---- main ----------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--events", type=int, default=300_000, help="backlog size for the throughput runs")
    parser.add_argument("--live-rate", type=int, default=5_000, help="events/s of the freshness run")
    parser.add_argument("--live-seconds", type=float, default=15.0)
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--no-clickhouse", action="store_true")
    parser.add_argument("--no-quix", action="store_true")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    from base.logs import configure_logging

    configure_logging(Settings.from_env().replace(log_level="WARNING"))
    if not args.no_clickhouse:
        from warehouse.client import preload_chdb

        preload_chdb()  # chdb changes the working directory while importing: do it first
    result: dict[str, Any] = {"bench": "pipeline", "machine_cpus": os.cpu_count()}
    with bench_broker(args.bootstrap) as settings:
        events = mixed_events(args.events)
        mix = Counter(topic_of(e) for e in events)
        say(f"traffic: {len(events)} events {dict(mix)}")
        produce_all(settings, to_messages(events))
        plain = confluent_loop(settings, len(events))
        baseline = plain["events_per_s"]
        say(f"plain confluent-kafka loop: {plain}")
        counters = counters_worker(settings, len(events), clickhouse=not args.no_clickhouse)
        say(f"counters worker (exactly once, into ClickHouse={not args.no_clickhouse}): {counters}")
        peer = {"error": "skipped"} if args.no_quix else quix(settings, len(events))
        say(f"quix streams: {peer}")
        live = live_latency(settings, events[:50_000], args.live_rate, args.live_seconds)
        say(f"freshness at {args.live_rate}/s: {live}")
    quix_rate = peer.get("events_per_s")
    result.update({
        "events": len(events),
        "traffic_mix": dict(mix),
        "events_per_s": round(counters["events_per_s"]),
        "p50_ms": round(float(live["p50_ms"]), 1) if "p50_ms" in live else None,
        "p99_ms": round(float(live["p99_ms"]), 1) if "p99_ms" in live else None,
        "baseline_confluent_loop_events_per_s": round(baseline),
        "quix_events_per_s": round(float(quix_rate)) if quix_rate else None,
        "ratio_to_baseline": round(counters["events_per_s"] / baseline, 3),
        "ratio_to_quix": round(counters["events_per_s"] / float(quix_rate), 2) if quix_rate else None,
        "cpu_bound_view": {  # events per CPU-second of each process: robust to neighbours' load
            "counters": round(counters["events_per_cpu_s"]),
            "baseline_confluent_loop": round(plain["events_per_cpu_s"]),
            "quix": round(float(peer["events_per_cpu_s"])) if "events_per_cpu_s" in peer else None,
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
        "into_clickhouse": not args.no_clickhouse,
        "clickhouse_rows": counters["clickhouse_rows"],
        "snapshots": counters["snapshots"],
        "live": live,
        "quix": peer,
        "targets": {"events_per_s": 30_000, "p99_ms": 500, "ahead_of_quix": True},
    })
    print(json.dumps(result))
    return 0
