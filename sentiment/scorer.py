"""Scoring comments: normalise, look up the LRU cache, run the model on the misses only, in batches.

Two runtimes over the files in ``sentiment/model/`` (and ``sentiment/model/en/``, the English
companion that :class:`RoutedModel` adds, see :mod:`sentiment.language`):
- ``onnx`` (default, what the agent uses): the committed ``model.int8.onnx`` on onnxruntime,
  tokenised by the ``tokenizers`` library; needs neither torch nor transformers, loads in well
  under a second.
- ``torch``: the fp16 safetensors that training writes (git-ignored: present only where the model
  was trained) loaded into transformers' ``BertForSequenceClassification`` in fp32; the reference
  the int8 graph is checked against (same labels within tolerance).

Batch independence: the int8 graph is *statically* quantised (activation scales fixed at export),
and padding is masked out of attention, so a comment's score is the same alone or in any batch
(up to float rounding, far below 0.01; tests/unit/test_sentiment_batch_independence.py).  The old
dynamic int8 graph computed activation scales per batch, which moved scores by up to 0.35.

Both are offline by construction: they read local files only (``HF_HUB_OFFLINE=1`` is set too).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from sentiment.cache import LruCache
from sentiment.labels import LABELS, Sentiment
from sentiment.language import reads_english
from sentiment.normalize import normalize

MODEL_DIR = Path(__file__).resolve().parent / "model"
#: The English companion model's directory inside a model directory (sentiment/english.py).
ENGLISH_SUBDIR = "en"
DEFAULT_MAX_LENGTH = 48


class Model(Protocol):
    name: str

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 3) class probabilities in LABELS order, for already normalised texts."""
        ...


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _tokenizer(model_dir: Path) -> Any:
    """The committed tokenizer, truncating at the length the model was trained with."""
    import json

    from tokenizers import Tokenizer

    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=int(config.get("model_max_length", DEFAULT_MAX_LENGTH)))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def _encode(tok: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encs = tok.encode_batch(list(texts))
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
    return ids, mask


class OnnxModel:
    """The int8 graph on onnxruntime's CPU provider."""

    name = "onnx-int8"

    def __init__(self, model_dir: Path = MODEL_DIR, threads: int = 0, file: str = "model.int8.onnx") -> None:
        if not (model_dir / file).exists():
            raise FileNotFoundError(f"no sentiment model at {model_dir / file} (livecommerce sentiment train/export)")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 = one per core
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # No busy-waiting between ops: on a 2-core machine shared with Kafka and other workers,
        # spinning threads steal the cores the other thread of this session needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_dir / file), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = _tokenizer(model_dir)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        ids, mask = _encode(self.tokenizer, texts)
        (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        return _softmax(np.asarray(logits, dtype=np.float64))


class TorchModel:
    """The committed fp16 weights in transformers, computed in fp32."""

    name = "torch"

    def __init__(self, model_dir: Path = MODEL_DIR, threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import BertForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = BertForSequenceClassification.from_pretrained(
            str(model_dir), dtype=torch.float32, local_files_only=True
        ).eval()  # type: ignore[no-untyped-call]
        self.tokenizer = _tokenizer(model_dir)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        ids, mask = _encode(self.tokenizer, texts)
        with self.torch.inference_mode():
            logits = self.model(
                input_ids=self.torch.from_numpy(ids), attention_mask=self.torch.from_numpy(mask)
            ).logits
        return _softmax(logits.float().numpy().astype(np.float64))


class RoutedModel:
    """The Chinese student and the English companion behind one :class:`Model`: each text goes to the
    model its own (normalised) text routes to (:func:`sentiment.language.reads_english`), so a score
    still does not depend on the other texts of the call."""

    def __init__(self, chinese: Model, english: Model) -> None:
        self.chinese = chinese
        self.english = english
        self.name = f"{chinese.name} + {english.name} (en)"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 3), dtype=np.float64)
        english = [reads_english(t) for t in texts]
        for model, wanted in ((self.chinese, False), (self.english, True)):
            rows = [i for i, e in enumerate(english) if e is wanted]
            if rows:
                out[rows] = model.probabilities([texts[i] for i in rows])
        return out


def to_sentiments(probs: np.ndarray) -> list[Sentiment]:
    """Vectorised :func:`sentiment.labels.from_probs` (same rule: argmax, score = P(pos) - P(neg))."""
    best = probs.argmax(axis=1)
    score = np.clip(probs[:, 2] - probs[:, 0], -1.0, 1.0).round(4)
    conf = probs[np.arange(len(probs)), best].clip(0.0, 1.0).round(4)
    return [Sentiment(LABELS[b], float(s), float(c)) for b, s, c in zip(best, score, conf, strict=True)]


def _run_order(key: str) -> tuple[bool, int]:
    """Misses are run grouped by the model that reads them, then by length (less padding): with an
    English companion at most one chunk of a call is cut into two runs (one per model)."""
    return reads_english(key), len(key)


#: Normalisation is pure and chat repeats itself, so raw texts map to their keys through a cache too.
_cached_normalize = lru_cache(maxsize=65_536)(normalize)


class SentimentScorer:
    """Batched, cached scoring of raw comment texts.

    ``workers`` > 1 runs the model on that many chunks of a call's misses at once, from a small
    thread pool (onnxruntime releases the GIL and a session may be run from several threads).  Why:
    on small batches two single-threaded runs side by side use two cores better than one run on two
    intra-op threads, which wakes and synchronises its second thread at every operator; on this
    2-core machine shared with other jobs the 2-thread session was often slower than 1 thread.
    The cache is guarded by a lock (``submit``'s model threads fill it as their runs finish); a scorer
    is still called from one thread at a time.
    """

    def __init__(self, model: Model, cache_size: int = 100_000, batch_size: int = 64, workers: int = 1) -> None:
        if batch_size < 1 or workers < 1:
            raise ValueError("batch_size and workers must be >= 1")
        self.model = model
        self.cache: LruCache[str, Sentiment] = LruCache(cache_size)
        self.batch_size = batch_size
        self.workers = workers
        self.model_calls = 0
        self.model_texts = 0
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sentiment-model") if workers > 1 else None
        #: Guards the cache and :attr:`_queued` once :meth:`submit` runs models on other threads.
        self._lock = threading.Lock()
        #: Texts whose model run :meth:`submit` queued and which are not cached yet: the run and
        #: the text's place in it.
        self._queued: dict[str, tuple[Future[list[Sentiment]], int]] = {}

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """One Sentiment per text, in order.  Only texts whose normalised form is not cached reach
        the model, each once per call, in length-sorted batches of at most ``batch_size`` (split in
        at least ``workers`` batches when there are enough misses to share)."""
        keys = [_cached_normalize(t) for t in texts]
        results: list[Sentiment | None] = [None] * len(keys)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                if key in missing:
                    missing[key].append(i)
                    continue
                hit = self.cache.get(key)
                if hit is None:
                    missing[key] = [i]
                else:
                    results[i] = hit
        todo = sorted(missing, key=_run_order)
        chunks = split(todo, self.batch_size, self.workers)
        self.model_calls += len(chunks)
        self.model_texts += len(todo)
        if self._pool is not None and len(chunks) > 1:
            probs = list(self._pool.map(self.model.probabilities, chunks))
        else:
            probs = [self.model.probabilities(chunk) for chunk in chunks]
        with self._lock:
            for chunk, chunk_probs in zip(chunks, probs, strict=True):
                for key, sentiment in zip(chunk, to_sentiments(chunk_probs), strict=True):
                    self.cache.put(key, sentiment)
                    for i in missing[key]:
                        results[i] = sentiment
        return [r for r in results if r is not None]

    def submit(self, texts: Sequence[str]) -> Future[list[Sentiment]]:
        """:meth:`score` without waiting: the future of one Sentiment per text, in order.

        The cache is looked up now; the misses' model runs (chunks of at most ``batch_size``) are
        queued on the model threads behind those of earlier calls, and the future completes on a
        model thread once the last run it needs is done.  Why: :meth:`score` ends each call on a
        barrier (its last chunk runs while the other model threads idle, then the caller prepares
        the next call while all of them idle); a stream of calls through ``submit`` keeps every
        model thread busy across calls.  A text already queued by an earlier call is not queued
        again: its answer comes from that run.  Results go into the cache as each run finishes.
        Call it from one thread at a time (like :meth:`score`; the two may be mixed).
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sentiment-model")
        keys = [_cached_normalize(t) for t in texts]
        done: Future[list[Sentiment]] = Future()
        answers: list[Sentiment | None] = []  # the cached answers; None where a run answers
        new: set[str] = set()
        with self._lock:
            for key in keys:
                hit = None if key in new or key in self._queued else self.cache.get(key)
                if hit is None and key not in self._queued:
                    new.add(key)
                answers.append(hit)
            chunks = split(sorted(new, key=_run_order), self.batch_size, self.workers)
            self.model_calls += len(chunks)
            self.model_texts += len(new)
            for chunk in chunks:
                run = self._pool.submit(self._run, chunk)
                for place, key in enumerate(chunk):
                    self._queued[key] = (run, place)
            # Per position a run answers: the position, the run and the text's place in the run.
            pending = [(i, *self._queued[key]) for i, key in enumerate(keys) if answers[i] is None]
        if not pending:
            done.set_result(cast("list[Sentiment]", answers))
            return done
        waiting = {run for _, run, _ in pending}
        left = [len(waiting)]
        count = threading.Lock()

        def run_done(_: Future[list[Sentiment]]) -> None:  # on a model thread (or here, if already done)
            with count:
                left[0] -= 1
                if left[0]:
                    return
            try:
                for i, run, place in pending:
                    answers[i] = run.result()[place]
            except BaseException as exc:  # a run failed: so does the call
                done.set_exception(exc)
            else:
                done.set_result(cast("list[Sentiment]", answers))

        for run in waiting:
            run.add_done_callback(run_done)
        return done

    def _run(self, chunk: list[str]) -> list[Sentiment]:
        """On a model thread: one model run, its answers cached as soon as it is done."""
        try:
            sentiments = to_sentiments(self.model.probabilities(chunk))
        except BaseException:
            with self._lock:  # a later call queues these texts again
                for key in chunk:
                    self._queued.pop(key, None)
            raise
        with self._lock:
            for key, sentiment in zip(chunk, sentiments, strict=True):
                self.cache.put(key, sentiment)
                self._queued.pop(key, None)
        return sentiments

    def close(self) -> None:
        """Stop the model threads (``workers`` > 1, or any :meth:`submit`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


#: Fewer texts than this per chunk are not worth a second model thread.
MIN_CHUNK = 8


def split(todo: list[str], batch_size: int, workers: int) -> list[list[str]]:
    """Consecutive chunks of ``todo`` of at most ``batch_size``, and at least ``workers`` of them
    (of at least :data:`MIN_CHUNK` texts) when there are enough, so every model thread gets work."""
    size = min(batch_size, max(MIN_CHUNK, -(-len(todo) // workers)))
    return [todo[start : start + size] for start in range(0, len(todo), size)]


def load_model(runtime: str = "onnx", model_dir: Path | None = None, threads: int = 0) -> Model:
    """The model in ``model_dir`` on ``runtime``; with its English companion when ``<model_dir>/en``
    holds one (its ``config.json``, written by ``sentiment train --english``)."""
    directory = model_dir or MODEL_DIR
    if runtime not in ("onnx", "torch"):
        raise ValueError(f"unknown runtime {runtime!r} (onnx or torch)")
    kind = OnnxModel if runtime == "onnx" else TorchModel
    chinese: Model = kind(directory, threads)
    english_dir = directory / ENGLISH_SUBDIR
    if (english_dir / "config.json").exists():
        return RoutedModel(chinese, kind(english_dir, threads))
    return chinese


def load_scorer(
    runtime: str = "onnx", model_dir: Path | None = None, *, cache_size: int = 100_000, batch_size: int = 64,
    threads: int = 0, workers: int = 1,
) -> SentimentScorer:
    return SentimentScorer(load_model(runtime, model_dir, threads), cache_size=cache_size, batch_size=batch_size,
                           workers=workers)
