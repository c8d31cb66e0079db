"""The three sentiment labels and how class probabilities become (label, score, confidence).

Pure post-processing shared by the PyTorch and the ONNX paths, so both give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

Label = Literal["positive", "neutral", "negative"]

#: Class index order of the model's output.
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
LABEL_TO_ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


class Sentiment(NamedTuple):
    """``score`` = P(positive) - P(negative) in [-1, 1]; ``confidence`` = probability of ``label``."""

    label: Label
    score: float
    confidence: float


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def from_probs(probs: Sequence[float]) -> Sentiment:
    """Label of the most probable class, score in [-1, 1], confidence in [0, 1]."""
    neg, neu, pos = (min(max(float(p), 0.0), 1.0) for p in probs)
    best = max(range(3), key=lambda i: (probs[i], -abs(i - 1)))
    score = min(max(pos - neg, -1.0), 1.0)
    return Sentiment(LABELS[best], round(score, 4), round((neg, neu, pos)[best], 4))


def from_logits(logits: Sequence[float]) -> Sentiment:
    return from_probs(softmax(logits))
