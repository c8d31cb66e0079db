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

from sentiment import corpora
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
    """Every measured set: the independent live-chat evaluation set, the dev split (what tuning may
    look at) and the corpora's held-out parts."""
    from sentiment.chat_data import dev_set, read_eval

    return {
        "eval": read_eval(),
        "dev": dev_set()[0],
        "reviews_zh": corpora.reviews("test"),
        "tweets_en": corpora.tweets("test"),
    }


def _metrics(probs: np.ndarray, gold: Sequence[int]) -> dict[str, Any]:
    polar = polar_accuracy(probs, gold)
    res: dict[str, Any] = {"n": len(gold), "polar_accuracy": None if math.isnan(polar) else round(polar, 4)}
    if any(g == LABEL_TO_ID["neutral"] for g in gold):
        res["three_class_accuracy"] = round(three_class_accuracy(probs, gold), 4)
    return res


def evaluate_probs(predict: Callable[[list[str]], np.ndarray], sets: dict[str, list[Example]]) -> dict[str, Any]:
    """Per set: n and accuracies, and the same ``by_lang`` and ``by_phenomenon`` when the set has several."""
    out: dict[str, Any] = {}
    for name, rows in sets.items():
        probs = predict([r.text for r in rows])
        gold = [LABEL_TO_ID[r.label] for r in rows]
        res = _metrics(probs, gold)
        for field, key in (("lang", "by_lang"), ("phenomenon", "by_phenomenon")):
            groups = sorted({getattr(r, field) for r in rows if getattr(r, field)})
            if len(groups) > 1:
                res[key] = {}
                for group in groups:
                    idx = [i for i, r in enumerate(rows) if getattr(r, field) == group]
                    res[key][group] = _metrics(probs[idx], [gold[i] for i in idx])
        out[name] = res
    return out


def format_table(results: dict[str, Any]) -> str:
    """One line per set, per language and per phenomenon: n, polar and three-class accuracy."""
    lines = [f"{'set':12s} {'group':22s} {'n':>5s} {'polar':>7s} {'3-class':>7s}"]

    def pct(value: float | None) -> str:
        return "      -" if value is None or math.isnan(value) else f"{value * 100:6.1f}%"

    def row(name: str, group: str, res: dict[str, Any]) -> str:
        polar, three = pct(res.get("polar_accuracy")), pct(res.get("three_class_accuracy"))
        return f"{name:12s} {group:22s} {res['n']:5d} {polar} {three}"

    for name, res in results.items():
        lines.append(row(name, "all", res))
        for key in ("by_lang", "by_phenomenon"):
            for group, sub in res.get(key, {}).items():
                lines.append(row(name, group, sub))
    return "\n".join(lines)


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
    """What the card claims: each measured accuracy minus ``margin``, floored to 0.5 point, for every
    set and every language of a set (phenomena are reported, not claimed: too few items each)."""

    def floor(res: dict[str, Any]) -> dict[str, float]:
        return {k: math.floor((v - margin) * 200) / 200 for k, v in res.items() if k.endswith("accuracy")}

    claims: dict[str, Any] = {}
    for name, res in measured.items():
        claims[name] = floor(res)
        for lang, sub in res.get("by_lang", {}).items():
            claims[f"{name}_{lang}"] = floor(sub)
    return claims


def flat(measured: dict[str, Any]) -> dict[str, Any]:
    """``measured`` with each language of a set as a set of its own (``eval_zh``), as the claims name them."""
    out = dict(measured)
    for name, res in measured.items():
        for lang, sub in res.get("by_lang", {}).items():
            out[f"{name}_{lang}"] = sub
    return out


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
