"""The scorer's cache and batching, with a stand-in model that records what it is asked.

The stand-in replaces only the neural network (tested for accuracy against the committed weights
in test_sentiment_accuracy.py); everything around it here is the real code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentiment.normalize import normalize
from sentiment.scorer import MIN_CHUNK, SentimentScorer, split


class LengthModel:
    """Positive when the normalised text has an even length: deterministic and text-dependent."""

    name = "length"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[0.1, 0.1, 0.8] if len(t) % 2 == 0 else [0.7, 0.2, 0.1] for t in texts])


LINES = ["666", "6666666", "哈哈哈", "哈哈哈哈哈", "来了", "ＬＯＶＥ", "love", "no", "ok?"]
chat = st.lists(st.sampled_from(LINES), max_size=120)


@given(chat, st.integers(min_value=1, max_value=16))
def test_each_normalised_text_reaches_the_model_once_and_answers_keep_order(texts: list[str], batch: int) -> None:
    model = LengthModel()
    scorer = SentimentScorer(model, cache_size=1000, batch_size=batch)
    first = scorer.score(texts)
    again = scorer.score(texts)
    assert first == again
    asked = [t for call in model.calls for t in call]
    assert sorted(asked) == sorted({normalize(t) for t in texts})
    assert all(len(call) <= batch for call in model.calls)
    for text, s in zip(texts, first, strict=True):
        assert s.label == ("positive" if len(normalize(text)) % 2 == 0 else "negative")


def test_cache_hits_are_counted_and_bounded() -> None:
    model = LengthModel()
    scorer = SentimentScorer(model, cache_size=2, batch_size=8)
    scorer.score(["a", "bb", "ccc"])
    assert len(scorer.cache) == 2
    scorer.score(["ccc", "ccc"])
    assert scorer.cache.hits >= 1
    assert scorer.model_texts == 3


@given(st.lists(st.text(max_size=3), max_size=300), st.integers(1, 80), st.integers(1, 4))
def test_split_keeps_order_and_bounds_and_feeds_every_worker(todo: list[str], batch: int, workers: int) -> None:
    chunks = split(todo, batch, workers)
    assert [t for c in chunks for t in c] == todo
    assert all(1 <= len(c) <= batch for c in chunks)
    if len(todo) >= workers * MIN_CHUNK and batch >= MIN_CHUNK:
        assert len(chunks) >= workers


@given(chat, st.integers(min_value=1, max_value=16), st.integers(min_value=2, max_value=3))
def test_model_runs_side_by_side_give_the_answers_of_one_at_a_time(texts: list[str], batch: int, workers: int) -> None:
    alone = SentimentScorer(LengthModel(), cache_size=1000, batch_size=batch).score(texts)
    model = LengthModel()
    parallel = SentimentScorer(model, cache_size=1000, batch_size=batch, workers=workers)
    try:
        assert parallel.score(texts) == alone
        assert sorted(t for call in model.calls for t in call) == sorted({normalize(t) for t in texts})
    finally:
        parallel.close()


@given(st.lists(chat, min_size=1, max_size=6), st.integers(min_value=1, max_value=16), st.integers(1, 3))
def test_submitted_calls_answer_as_score_does_and_queue_each_text_once(
    calls: list[list[str]], batch: int, workers: int,
) -> None:
    reference = SentimentScorer(LengthModel(), cache_size=1000, batch_size=batch)
    expected = [reference.score(texts) for texts in calls]
    model = LengthModel()
    piped = SentimentScorer(model, cache_size=1000, batch_size=batch, workers=workers)
    try:
        futures = [piped.submit(texts) for texts in calls]  # all queued before any is awaited
        assert [f.result(timeout=30) for f in futures] == expected
        ran = [t for call in model.calls for t in call]
        assert sorted(ran) == sorted({normalize(t) for texts in calls for t in texts}), "each text runs once"
        assert piped.submit(calls[0]).result(timeout=30) == expected[0]  # now from the cache
        assert len(model.calls) == piped.model_calls and piped.model_texts == len(ran)
    finally:
        piped.close()


def test_a_failed_model_run_fails_the_calls_that_wait_for_it() -> None:
    class Broken(LengthModel):
        def probabilities(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("model failed")

    scorer = SentimentScorer(Broken(), cache_size=10, workers=2)
    try:
        with pytest.raises(RuntimeError, match="model failed"):
            scorer.submit(["666", "love"]).result(timeout=30)
        with pytest.raises(RuntimeError, match="model failed"):  # queued again, not stuck on the failed run
            scorer.submit(["666"]).result(timeout=30)
        assert scorer.submit([]).result(timeout=1) == []
    finally:
        scorer.close()
