"""``livecommerce bench sentiment [--json]``: speed and accuracy of comment scoring, with the snownlp baseline.

Measures, on this machine, the committed ONNX int8 model through the same
:class:`~sentiment.scorer.SentimentScorer` the comments agent uses:

- ``model_load_s``: loading the model and tokenizer from ``sentiment/model``;
- ``comments_per_s_cold``: distinct comments with the cache disabled (every comment runs the
  model), in length-sorted batches of ``batch_size``;
- ``comments_per_s_realistic``: a chat stream with live chat's repeats (Zipf-distributed picks
  from the live-chat set, plus ``--unique-share`` of one-off comments), cache on;
- ``p99_batch_latency_ms``: at ``--rate`` comments/s arriving into the agent's micro-batcher
  (size ``batch_size`` or ``--max-wait-ms``), the 99th percentile of the time to score one
  released batch; ``p99_comment_latency_ms`` adds the time a comment waited in the batcher;
- ``rss_mb``: peak resident memory of this process;
- ``snownlp_comments_per_s`` and the accuracies of both on the held-out live-chat set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from typing import Any

import numpy as np


def _zipf_stream(pool: list[str], n: int, unique_share: float, rng: random.Random) -> list[str]:
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    picks = rng.choices(pool, weights=weights, k=n)
    out = []
    for i, text in enumerate(picks):
        if rng.random() < unique_share:
            text = f"{text} {rng.choice(['#', '@', '~'])}{i}"  # a one-off comment the cache cannot know
        out.append(text)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench sentiment")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="onnxruntime intra-op thread counts tried for the cold run; the fastest is kept")
    parser.add_argument("--cold", type=int, default=4000, help="distinct comments in the cold run")
    parser.add_argument("--realistic", type=int, default=50_000, help="comments in the realistic stream")
    parser.add_argument("--unique-share", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--max-wait-ms", type=float, default=50.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="simulated seconds at --rate")
    parser.add_argument("--snownlp", type=int, default=1000, help="comments timed for the snownlp baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from sentiment import livechat
    from sentiment.batching import MicroBatcher
    from sentiment.evaluate import evaluate_probs, model_predictor, snownlp_probabilities
    from sentiment.scorer import SentimentScorer, load_model

    rng = random.Random(args.seed)
    pool = [r.text for r in livechat.load()]
    rng.shuffle(pool)
    result: dict[str, Any] = {"cpu_count": os.cpu_count(), "runtime": "onnxruntime int8", "batch_size": args.batch_size}

    # Cold: distinct texts (live-chat lines, then numbered variants), cache disabled.
    cold = [pool[i % len(pool)] + ("" if i < len(pool) else f" {i}") for i in range(args.cold)]
    best: tuple[float, int] = (0.0, 0)
    for threads in args.threads:
        started = time.perf_counter()
        candidate = load_model("onnx", threads=threads)
        load_s = time.perf_counter() - started
        scorer = SentimentScorer(candidate, cache_size=0, batch_size=args.batch_size)
        scorer.score(cold[: args.batch_size])  # warm-up: first run allocates
        started = time.perf_counter()
        for i in range(0, len(cold), 1024):
            scorer.score(cold[i : i + 1024])
        rate = len(cold) / (time.perf_counter() - started)
        result[f"comments_per_s_cold_{threads}_threads"] = round(rate)
        if rate > best[0]:
            best, model = (rate, threads), candidate
            result["model_load_s"] = round(load_s, 3)
    result["comments_per_s_cold"] = round(best[0])
    result["threads"] = best[1]
    result["cold_comments"] = len(cold)

    # Realistic: repeats as live chat has them, cache on, scored in agent-sized batches.
    stream = _zipf_stream(pool, args.realistic, args.unique_share, rng)
    scorer = SentimentScorer(model, cache_size=100_000, batch_size=args.batch_size)
    started = time.perf_counter()
    for i in range(0, len(stream), args.batch_size):
        scorer.score(stream[i : i + args.batch_size])
    real_s = time.perf_counter() - started
    result["comments_per_s_realistic"] = round(len(stream) / real_s)
    result["realistic_cache_hit_rate"] = round(scorer.cache.hit_rate, 4)
    result["realistic_unique_share"] = args.unique_share

    # Latency at a steady arrival rate through the agent's micro-batcher (fresh cache).
    scorer = SentimentScorer(model, cache_size=100_000, batch_size=args.batch_size)
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

    # Accuracy side by side on the held-out live-chat set, and the lexicon baseline's speed.
    held = {"live_chat": livechat.load("test")}
    ours = evaluate_probs(model_predictor(SentimentScorer(model, cache_size=0)), held)["live_chat"]
    snow = evaluate_probs(snownlp_probabilities, held)["live_chat"]
    result["model_live_chat_polar_accuracy"] = ours["polar_accuracy"]
    result["model_live_chat_three_class_accuracy"] = ours["three_class_accuracy"]
    result["snownlp_live_chat_polar_accuracy"] = snow["polar_accuracy"]
    result["snownlp_live_chat_three_class_accuracy"] = snow["three_class_accuracy"]
    sample = cold[: args.snownlp]
    started = time.perf_counter()
    snownlp_probabilities(sample)
    result["snownlp_comments_per_s"] = round(len(sample) / (time.perf_counter() - started))
    result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    for key, value in result.items():
        print(f"{key:40s} {value}")
    if args.json:
        print(json.dumps(result))
    return 0
