"""Near-duplicate detection between the evaluation set and everything the model trains on.

Why: an evaluation set only measures generalisation if no training item is the same comment or a
light rewrite of one (the old held-out set shared templates with training: "主播666" held out,
"主播yyds" trained).  Two tests, both on :func:`overlap_key` (the scorer's normalisation, then
punctuation, symbols and spaces dropped, so "太好看了！！" and "太好看了" collide):

- **equality** of the keys;
- **character 3-gram Jaccard** of the keys >= :data:`JACCARD_THRESHOLD` (0.8).  Keys are padded
  with ``^``/``$`` so that texts of one or two characters still have grams.

:class:`GramIndex` indexes the (small) evaluation side once and answers, for each training text,
whether it collides with any evaluation text; the Jaccard is computed only for evaluation items
sharing at least one gram.  Pure functions, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sentiment.normalize import normalize

JACCARD_THRESHOLD = 0.8
GRAM = 3


def overlap_key(text: str) -> str:
    """Normalised text without punctuation, symbols or whitespace (letters, digits, CJK and marks kept)."""
    return "".join(ch for ch in normalize(text) if unicodedata.category(ch)[0] in "LNM")


def char_grams(key: str, n: int = GRAM) -> frozenset[str]:
    padded = f"^{key}$"
    if len(padded) <= n:
        return frozenset({padded})
    return frozenset(padded[i : i + n] for i in range(len(padded) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class Match:
    """Why a text collides: ``equal`` keys, or ``ngram`` with the best Jaccard found."""

    kind: str
    other: int
    jaccard: float


class GramIndex:
    """An inverted index of character grams over a fixed list of texts."""

    def __init__(self, texts: Sequence[str], threshold: float = JACCARD_THRESHOLD) -> None:
        self.threshold = threshold
        self.keys = [overlap_key(t) for t in texts]
        self.grams = [char_grams(k) for k in self.keys]
        self.by_key: dict[str, int] = {}
        for i, key in enumerate(self.keys):
            self.by_key.setdefault(key, i)
        self.postings: dict[str, list[int]] = {}
        for i, grams in enumerate(self.grams):
            for g in grams:
                self.postings.setdefault(g, []).append(i)

    def match(self, text: str) -> Match | None:
        """The first indexed text that ``text`` overlaps (equal key, else best Jaccard >= threshold)."""
        key = overlap_key(text)
        hit = self.by_key.get(key)
        if hit is not None:
            return Match("equal", hit, 1.0)
        grams = char_grams(key)
        shared: Counter[int] = Counter()
        for g in grams:
            shared.update(self.postings.get(g, ()))
        best: Match | None = None
        for i, inter in shared.items():
            # Jaccard bound from sizes alone: skip what cannot reach the threshold.
            score = inter / (len(grams) + len(self.grams[i]) - inter)
            if score >= self.threshold and (best is None or score > best.jaccard):
                best = Match("ngram", i, round(score, 4))
        return best


def split_overlapping(train: Sequence[str], index: GramIndex) -> tuple[list[int], dict[str, int]]:
    """Indices of ``train`` texts that overlap nothing in ``index``, and counts of the dropped ones by kind."""
    kept: list[int] = []
    dropped: Counter[str] = Counter()
    for i, text in enumerate(train):
        m = index.match(text)
        if m is None:
            kept.append(i)
        else:
            dropped[m.kind] += 1
    return kept, {"equal": dropped["equal"], "ngram": dropped["ngram"]}


def dedupe(texts: Iterable[str]) -> list[int]:
    """Indices of the first text of each :func:`overlap_key` (exact duplicates within one set)."""
    seen: set[str] = set()
    out: list[int] = []
    for i, t in enumerate(texts):
        k = overlap_key(t)
        if k not in seen:
            seen.add(k)
            out.append(i)
    return out
