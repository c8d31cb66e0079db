"""``livecommerce bench sentiment [--json]``: speed and accuracy of comment scoring, with the snownlp baseline.

Measures, on this machine, the committed ONNX int8 model through the same
:class:`~sentiment.scorer.SentimentScorer` the comments agent uses:

- ``model_load_s``: loading the model and tokenizer from ``sentiment/model``;
- ``comments_per_s_cold``: distinct comments with the cache disabled (every comment runs the
  model), in length-sorted batches of ``batch_size``, the best of several configurations: one
  model run at a time on each of ``--threads`` intra-op threads, and ``--workers`` single-threaded
  runs side by side (the scorer's ``workers``, what the agent uses), keys
  ``comments_per_s_cold_{N}_threads`` / ``_{N}_workers``; texts are the project's first live-chat set
  (then numbered variants), the pool of the figures this bench was first judged by;
- ``baseline_l6_comments_per_s_cold``: the same for the previous model, a 6-layer MiniLM with
  dynamic int8 (kept in ``bench/baseline_l6`` for this comparison only), measured in the same run,
  alternating with the shipped model in each configuration (``--rounds`` each); each model's best
  (configuration, round) is kept, and ``speedup_vs_l6`` is the ratio of the two bests;
- ``batch_score_max_diff``: the largest score difference of one text scored alone and inside
  shuffled batches of other comments (static int8: should be ~0);
- ``comments_per_s_realistic``: a chat stream with live chat's repeats (Zipf-distributed picks
  from that set, plus ``--unique-share`` of one-off comments), cache on (fresh per run), in calls
  of ``batch_size``, in each of the same configurations, and the agent's own path
  (``comments_per_s_realistic_agent_path``: the agent's takes of 512 through ``submit`` on its two
  single-threaded model runs, with its lookahead of two takes); the best is kept
  (``realistic_config``);
- ``p99_batch_latency_ms``: at ``--rate`` comments/s arriving into the agent's micro-batcher
  (size ``batch_size`` or ``--max-wait-ms``), the 99th percentile of the time to score one
  released batch; ``p99_comment_latency_ms`` adds the time a comment waited in the batcher;
- ``rss_mb``: peak resident memory of this process;
- ``snownlp_comments_per_s`` and the accuracies of both on the dev split of the live chat;
- ``agent_comments_per_s_cold`` / ``agent_comments_per_s_realistic`` (``--agent N``, 0 skips):
  end to end through the Faust agent, i.e. a ``livecommerce worker sentiment`` process on a broker
  of its own (or ``--bootstrap``) working off a backlog of N comments (distinct texts, then the
  realistic Zipf stream; a fresh worker and cache each): scored records over the span of their
  Kafka timestamps; ``agent_cpu_s_per_1k`` is the worker's CPU seconds per 1,000 comments
  (including start-up: an upper bound) to state its cost independently of how busy the machine is;
  ``agent_share_of_model_cold`` = agent / model-alone cold rate; ``model_cold_around_agent`` is the
  model alone (best configuration) measured once right before and once right after the agent's
  cold run (mean), and ``agent_share_of_model_around`` the agent's share of that.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.common import cpu_seconds, free_ports

if TYPE_CHECKING:
    from sentiment.scorer import Model

#: Today's 6-layer MiniLM int8 model (dynamic quantisation), kept for this bench only.
BASELINE_L6_DIR = Path(__file__).resolve().parent / "baseline_l6"


def _zipf_stream(pool: list[str], n: int, unique_share: float, rng: random.Random) -> list[str]:
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    picks = rng.choices(pool, weights=weights, k=n)
    out = []
    for i, text in enumerate(picks):
        if rng.random() < unique_share:
            text = f"{text} {rng.choice(['#', '@', '~'])}{i}"  # a one-off comment the cache cannot know
        out.append(text)
    return out


def _realistic_submitted(model: Model, stream: list[str], batch_size: int) -> float:
    """Comments/s of ``stream`` driven as the comments agent drives its scorer: calls of the agent's
    take (``BATCH_SIZE``) through :meth:`~sentiment.scorer.SentimentScorer.submit` on the agent's
    model threads, at most ``SCORE_AHEAD`` calls queued behind the one being waited for; fresh cache."""
    from sentiment.scorer import SentimentScorer
    from streams.sentiment.worker import BATCH_SIZE, MODEL_WORKERS, SCORE_AHEAD

    scorer = SentimentScorer(model, cache_size=100_000, batch_size=batch_size, workers=MODEL_WORKERS)
    queued: list[Any] = []
    started = time.perf_counter()
    for i in range(0, len(stream), BATCH_SIZE):
        queued.append(scorer.submit(stream[i : i + BATCH_SIZE]))
        if len(queued) > SCORE_AHEAD:
            queued.pop(0).result()
    for future in queued:
        future.result()
    rate = len(stream) / (time.perf_counter() - started)
    scorer.close()
    return rate


@contextlib.contextmanager
def _broker(bootstrap: str | None) -> Iterator[tuple[str, Path]]:
    """A broker of our own on free ports in a temp dir (or ``bootstrap``), and a scratch dir."""
    from base.broker import LocalKafka

    tmp = Path(tempfile.mkdtemp(prefix="lc-bench-sentiment-"))
    broker = None
    try:
        if bootstrap is None:
            port, controller = free_ports(2)
            broker = LocalKafka(tmp / "kafka", port=port, controller_port=controller, heap="512m",
                                die_with_parent=True)
            broker.start(timeout=180)
            bootstrap = broker.bootstrap
        yield bootstrap, tmp
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def agent_throughput(bootstrap: str, workdir: Path, texts: list[str], label: str) -> dict[str, Any]:
    """Comments/s of one ``livecommerce worker sentiment`` process working off a backlog of ``texts``."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from base.kafka import make_consumer, make_producer
    from base.kafka_admin import create_topics, delete_topics
    from base.settings import Settings
    from schemas import TOPICS, encode
    from schemas.events import Comment

    settings = Settings.from_env({}).replace(
        kafka_bootstrap=bootstrap, topic_prefix=f"bench{int(time.time())}{label}.", partitions=3,
        data_dir=str(workdir / label), log_level="WARNING",
    )
    create_topics(settings, TOPICS.values())
    now = int(time.time() * 1000) - 60_000
    prod = make_producer(settings, {"linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    for i, text in enumerate(texts):
        comment = Comment(event_id=f"b{i}", room_id=f"room-{i % 20}", user_id=f"u{i % 997}", text=text, ts=now + i)
        prod.produce(settings.topic("comments"), encode(comment), comment.room_id.encode())
        if i % 10_000 == 0:
            prod.poll(0)
    if prod.flush(120):
        raise RuntimeError("could not load the bench comments into Kafka")
    env = {**os.environ, **settings.as_env(), "LC_LOG_FORMAT": "json"}
    log_path = workdir / f"worker-{label}.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "livecommerce.cli", "worker", "sentiment", "--worker-id", f"bench-{label}",
             "--web-port", str(free_ports(1)[0])], env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    topic = settings.topic("scored-comments")
    consumer = make_consumer(settings, f"{topic}-bench")
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
    first = last = None
    got = 0
    deadline = time.monotonic() + 120 + len(texts) / 100
    try:
        while got < len(texts) and time.monotonic() < deadline and worker.poll() is None:
            for msg in consumer.consume(10_000, 0.2):
                if msg.error() is not None:
                    continue
                got += 1
                ts = msg.timestamp()[1]
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
        cpu = cpu_seconds(worker.pid) if worker.poll() is None else float("nan")
    finally:
        consumer.close()
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
        with contextlib.suppress(Exception):
            delete_topics(settings)
    if got < len(texts) or first is None or last is None or last == first:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"agent bench ({label}): {got} of {len(texts)} comments scored; worker log:\n{tail}")
    return {
        f"agent_comments_per_s_{label}": round((got - 1) / ((last - first) / 1000)),
        f"agent_cpu_s_per_1k_{label}": round(cpu / got * 1000, 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench sentiment")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="onnxruntime intra-op thread counts tried for the cold run; the fastest is kept")
    parser.add_argument("--workers", type=int, nargs="*", default=[2],
                        help="single-threaded model runs side by side, also tried for the cold run")
    parser.add_argument("--cold", type=int, default=4000, help="distinct comments in the cold run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="cold runs of each model, alternating shipped and baseline; the best of each is kept")
    parser.add_argument("--batch-probe", type=int, default=200,
                        help="texts scored alone and in mixed batches for batch_score_max_diff")
    parser.add_argument("--realistic", type=int, default=50_000, help="comments in the realistic stream")
    parser.add_argument("--unique-share", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--max-wait-ms", type=float, default=50.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="simulated seconds at --rate")
    parser.add_argument("--snownlp", type=int, default=1000, help="comments timed for the snownlp baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--agent", type=int, default=20_000,
                        help="comments in each end-to-end run through the Faust agent (0 skips them)")
    parser.add_argument("--bootstrap", default=None,
                        help="Kafka bootstrap for the agent runs (default: start a broker of our own)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from sentiment import livechat
    from sentiment.batching import MicroBatcher
    from sentiment.chat_data import dev_set
    from sentiment.evaluate import evaluate_probs, model_predictor, snownlp_probabilities
    from sentiment.scorer import OnnxModel, SentimentScorer, load_model

    rng = random.Random(args.seed)
    # The same comment pool as the measurements this bench was first judged by (the project's first
    # live-chat set, 1,799 comments), so the figures compare; the accuracy part uses the dev split.
    pool = [r.text for r in livechat.load()]
    rng.shuffle(pool)
    result: dict[str, Any] = {"cpu_count": os.cpu_count(), "runtime": "onnxruntime static int8",
                              "batch_size": args.batch_size}

    # Cold: distinct texts (live-chat lines, then numbered variants), cache disabled.  The shipped
    # model and today's 6-layer baseline alternate (best of --rounds each), so both meet the same
    # load on this shared machine.
    cold = [pool[i % len(pool)] + ("" if i < len(pool) else f" {i}") for i in range(args.cold)]

    def cold_rate(candidate: Model, workers: int) -> float:
        scorer = SentimentScorer(candidate, cache_size=0, batch_size=args.batch_size, workers=workers)
        scorer.score(cold[: args.batch_size])  # warm-up: first run allocates
        started = time.perf_counter()
        for i in range(0, len(cold), 1024):
            scorer.score(cold[i : i + 1024])
        rate = len(cold) / (time.perf_counter() - started)
        scorer.close()
        return rate

    # Configurations (intra-op threads, model runs side by side): each of --threads with one run at
    # a time, then --workers single-threaded runs side by side (what the agent uses).
    configs = [(t, 1) for t in args.threads] + [(1, w) for w in args.workers if w > 1]
    best: tuple[float, tuple[int, int]] = (0.0, (0, 0))
    base_best: tuple[float, tuple[int, int]] = (0.0, (0, 0))
    models: dict[tuple[int, int], Model] = {}
    bases: dict[int, Model] = {}
    for threads, workers in configs:
        started = time.perf_counter()
        if threads not in {t for t, _ in models}:
            models[(threads, workers)] = load_model("onnx", threads=threads)
            bases[threads] = OnnxModel(BASELINE_L6_DIR, threads=threads)
        else:  # a session may be run from several threads: the workers share the 1-thread one
            models[(threads, workers)] = next(m for (t, _), m in models.items() if t == threads)
        candidate, baseline = models[(threads, workers)], bases[threads]
        load_s = time.perf_counter() - started
        ours, base = 0.0, 0.0
        for _ in range(args.rounds):  # alternating, so both meet the same load
            ours = max(ours, cold_rate(candidate, workers))
            base = max(base, cold_rate(baseline, workers))
        name = f"{threads}_threads" if workers == 1 else f"{workers}_workers"
        result[f"comments_per_s_cold_{name}"] = round(ours)
        result[f"baseline_l6_comments_per_s_cold_{name}"] = round(base)
        if ours > best[0]:
            best, model, model_workers = (ours, (threads, workers)), candidate, workers
            if workers == 1:
                result["model_load_s"] = round(load_s, 3)
        base_best = max(base_best, (base, (threads, workers)))
    result["threads"], result["workers"] = best[1]
    result["comments_per_s_cold"] = round(best[0])
    result["baseline_l6_threads"], result["baseline_l6_workers"] = base_best[1]
    result["baseline_l6_comments_per_s_cold"] = round(base_best[0])
    result["speedup_vs_l6"] = round(best[0] / base_best[0], 2)
    result["cold_comments"] = len(cold)
    result["cold_rounds"] = args.rounds

    # Batch independence: each text alone, then inside shuffled batches of other texts.
    probe = pool[: args.batch_probe]
    alone = {t: s.score for t in probe for s in SentimentScorer(model, cache_size=0).score([t])}
    worst = 0.0
    for _ in range(3):
        mixed = probe + rng.sample(pool[args.batch_probe :], k=len(probe))
        rng.shuffle(mixed)
        scores = SentimentScorer(model, cache_size=0, batch_size=args.batch_size).score(mixed)
        worst = max([worst] + [abs(s.score - alone[t]) for t, s in zip(mixed, scores, strict=True) if t in alone])
    result["batch_score_max_diff"] = round(worst, 5)
    result["batch_probe_texts"] = len(probe)

    # Realistic: repeats as live chat has them, cache on (a fresh one per run: nothing carries over
    # from the cold runs or between thread counts), scored in calls of ``batch_size`` comments.
    # Only the cache misses (~13 %) reach the model, a few per call, and on such small batches one
    # intra-op thread can beat two (waking a second thread per operator costs more than it
    # saves), so each thread count is measured and the best kept, as for the cold rate.
    stream = _zipf_stream(pool, args.realistic, args.unique_share, rng)
    real_best: tuple[float, str] = (0.0, "")
    for (threads, workers), candidate in models.items():
        scorer = SentimentScorer(candidate, cache_size=100_000, batch_size=args.batch_size, workers=workers)
        started = time.perf_counter()
        for i in range(0, len(stream), args.batch_size):
            scorer.score(stream[i : i + args.batch_size])
        rate = len(stream) / (time.perf_counter() - started)
        scorer.close()
        name = f"{threads}_threads" if workers == 1 else f"{workers}_workers"
        result[f"comments_per_s_realistic_{name}"] = round(rate)
        real_best = max(real_best, (rate, name))
    # The agent's own path: calls of the agent's batch through ``submit`` with its lookahead, so the
    # model threads go from one call's misses to the next without the per-call barrier of ``score``
    # (on realistic chat each call holds only a few misses; the barrier idles a model thread).
    one_thread = next((m for (t, _), m in models.items() if t == 1), model)  # the agent's runs are 1-thread
    rate = _realistic_submitted(one_thread, stream, args.batch_size)
    result["comments_per_s_realistic_agent_path"] = round(rate)
    real_best = max(real_best, (rate, "agent_path"))
    result["comments_per_s_realistic"] = round(real_best[0])
    result["realistic_config"] = real_best[1]
    result["realistic_cache_hit_rate"] = round(scorer.cache.hit_rate, 4)
    result["realistic_unique_share"] = args.unique_share

    # Latency at a steady arrival rate through the agent's micro-batcher (fresh cache).
    scorer = SentimentScorer(model, cache_size=100_000, batch_size=args.batch_size, workers=model_workers)
    batcher: MicroBatcher[tuple[str, float]] = MicroBatcher(args.batch_size, args.max_wait_ms)
    n = int(args.rate * args.latency_seconds)
    arrivals = _zipf_stream(pool, n, args.unique_share, rng)
    gap_ms = 1000.0 / args.rate
    batch_ms: list[float] = []
    comment_ms: list[float] = []
    for i, text in enumerate(arrivals):
        now = i * gap_ms
        batch = batcher.add((text, now), now) or batcher.poll(now)
        if batch:
            t0 = time.perf_counter()
            scorer.score([t for t, _ in batch])
            took = (time.perf_counter() - t0) * 1000
            batch_ms.append(took)
            comment_ms += [now - arrived + took for _, arrived in batch]
    result["p99_batch_latency_ms"] = round(float(np.percentile(batch_ms, 99)), 2)
    result["p50_batch_latency_ms"] = round(float(np.percentile(batch_ms, 50)), 2)
    result["p99_comment_latency_ms"] = round(float(np.percentile(comment_ms, 99)), 2)
    result["latency_rate_per_s"] = args.rate
    result["latency_max_wait_ms"] = args.max_wait_ms
    result["mean_batch_at_rate"] = round(len(arrivals) / max(1, len(batch_ms)), 1)

    # Accuracy side by side on the dev split (the independent eval set is `livecommerce sentiment
    # eval`'s), and the lexicon baseline's speed.
    held = {"dev": dev_set()[0]}
    ours = evaluate_probs(model_predictor(SentimentScorer(model, cache_size=0)), held)["dev"]
    snow = evaluate_probs(snownlp_probabilities, held)["dev"]
    result["model_dev_polar_accuracy"] = ours["polar_accuracy"]
    result["model_dev_three_class_accuracy"] = ours["three_class_accuracy"]
    result["snownlp_dev_polar_accuracy"] = snow["polar_accuracy"]
    result["snownlp_dev_three_class_accuracy"] = snow["three_class_accuracy"]
    sample = cold[: args.snownlp]
    started = time.perf_counter()
    snownlp_probabilities(sample)
    result["snownlp_comments_per_s"] = round(len(sample) / (time.perf_counter() - started))
    result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    # End to end through the Faust agent (its own process, batch size and max wait of the worker).
    if args.agent:
        from streams.sentiment.worker import BATCH_SIZE, MAX_WAIT_MS

        result["agent_batch_size"] = BATCH_SIZE
        result["agent_max_wait_ms"] = MAX_WAIT_MS
        result["agent_comments"] = args.agent
        distinct = [pool[i % len(pool)] + ("" if i < len(pool) else f" {i}") for i in range(args.agent)]
        realistic = _zipf_stream(pool, args.agent, args.unique_share, rng)
        with _broker(args.bootstrap) as (bootstrap, workdir):
            # The model alone once more right before and right after the agent's cold run (best
            # configuration, one round each): on a shared machine the load of the cold rounds
            # minutes earlier can differ from the agent's.
            around = cold_rate(model, model_workers)
            result.update(agent_throughput(bootstrap, workdir, distinct, "cold"))
            around = (around + cold_rate(model, model_workers)) / 2
            result.update(agent_throughput(bootstrap, workdir, realistic, "realistic"))
        result["agent_share_of_model_cold"] = round(
            result["agent_comments_per_s_cold"] / result["comments_per_s_cold"], 3
        )
        result["model_cold_around_agent"] = round(around)
        result["agent_share_of_model_around"] = round(result["agent_comments_per_s_cold"] / around, 3)

    for key, value in result.items():
        print(f"{key:40s} {value}")
    if args.json:
        print(json.dumps(result))
    return 0
