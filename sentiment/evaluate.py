"""Accuracy on the held-out sets, the claims the model card makes, and the snownlp baseline.

Definitions (the model card uses the same words):
- three-class accuracy: argmax over (negative, neutral, positive) equals the gold label;
- polar accuracy: on gold positive/negative items only, P(positive) > P(negative) matches the gold
  (the question "which way does this comment lean", with neutral set aside).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentiment import corpora, livechat
from sentiment.labels import LABEL_TO_ID
from sentiment.livechat import Example
from sentiment.normalize import normalize
from sentiment.scorer import MODEL_DIR, SentimentScorer

METRICS_FILE = "metrics.json"


def three_class_accuracy(probs: np.ndarray, gold: Sequence[int]) -> float:
    if len(gold) == 0:
        return float("nan")
    return float((probs.argmax(axis=1) == np.asarray(gold)).mean())


def polar_accuracy(probs: np.ndarray, gold: Sequence[int]) -> float:
    g = np.asarray(gold)
    polar = g != LABEL_TO_ID["neutral"]
    if not polar.any():
        return float("nan")
    pred = np.where(probs[polar, 2] > probs[polar, 0], LABEL_TO_ID["positive"], LABEL_TO_ID["negative"])
    return float((pred == g[polar]).mean())


def held_out_sets() -> dict[str, list[Example]]:
    chat = livechat.load("test")
    return {
        "live_chat": chat,
        "live_chat_zh": [e for e in chat if e.lang == "zh"],
        "live_chat_en": [e for e in chat if e.lang == "en"],
        "reviews_zh": corpora.reviews("test"),
        "tweets_en": corpora.tweets("test"),
    }


def evaluate_probs(predict: Callable[[list[str]], np.ndarray], sets: dict[str, list[Example]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in sets.items():
        probs = predict([r.text for r in rows])
        gold = [LABEL_TO_ID[r.label] for r in rows]
        res: dict[str, Any] = {"n": len(rows), "polar_accuracy": round(polar_accuracy(probs, gold), 4)}
        if any(g == LABEL_TO_ID["neutral"] for g in gold):
            res["three_class_accuracy"] = round(three_class_accuracy(probs, gold), 4)
        out[name] = res
    return out


def model_predictor(scorer: SentimentScorer, batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    def predict(texts: list[str]) -> np.ndarray:
        keys = [normalize(t) for t in texts]
        order = sorted(range(len(keys)), key=lambda i: len(keys[i]))
        probs = np.zeros((len(keys), 3))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            probs[idx] = scorer.model.probabilities([keys[i] for i in idx])
        return probs

    return predict


#: snownlp's lexicon/Bayes score is P(positive); inside this band it is called neutral.
SNOWNLP_NEUTRAL_BAND = (0.4, 0.6)


def snownlp_probabilities(texts: list[str]) -> np.ndarray:
    """The lexicon baseline as (neg, neu, pos) pseudo-probabilities, so the same metrics apply."""
    from snownlp import SnowNLP

    rows = []
    lo, hi = SNOWNLP_NEUTRAL_BAND
    for t in texts:
        p = float(SnowNLP(t).sentiments) if t.strip() else 0.5
        rows.append((1 - p, 1.0 if lo <= p <= hi else 0.0, p))
    return np.asarray(rows, dtype=np.float64)


def evaluate_all(scorer: SentimentScorer) -> dict[str, Any]:
    return evaluate_probs(model_predictor(scorer), held_out_sets())


def claims_from(measured: dict[str, Any], margin: float = 0.01) -> dict[str, Any]:
    """What the card claims: each measured accuracy minus ``margin``, floored to 0.5 point."""
    return {
        name: {k: math.floor((v - margin) * 200) / 200 for k, v in res.items() if k.endswith("accuracy")}
        for name, res in measured.items()
    }


def write_metrics(results: dict[str, Any], runtime: str, model_dir: Path | None = None) -> Path:
    path = (model_dir or MODEL_DIR) / METRICS_FILE
    current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    current.setdefault("measured", {})[runtime] = results
    if runtime == "onnx":
        current["claims"] = claims_from(results)
    path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    return path


def load_claims(model_dir: Path | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(((model_dir or MODEL_DIR) / METRICS_FILE).read_text())["claims"]
    return claims
