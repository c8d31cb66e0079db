"""Probabilities -> (label, score, confidence); comments -> scored comments and alerts."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from schemas import validate
from schemas.events import Comment
from sentiment.labels import LABELS, Sentiment, from_logits, from_probs
from sentiment.mood import MoodPolicy, MoodTracker
from sentiment.scorer import to_sentiments
from streams.sentiment.core import alert_id, process_batch, scored

probs3 = st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=3, max_size=3).map(
    lambda xs: [x / sum(xs) for x in xs]
)


@given(probs3)
def test_label_is_the_most_probable_class_and_score_is_pos_minus_neg(probs: list[float]) -> None:
    s = from_probs(probs)
    assert s.label in LABELS
    assert probs[LABELS.index(s.label)] == max(probs)
    assert -1.0 <= s.score <= 1.0 and 0.0 <= s.confidence <= 1.0
    assert abs(s.score - (probs[2] - probs[0])) <= 1e-4
    assert abs(s.confidence - max(probs)) <= 1e-4


@given(st.lists(probs3, min_size=1, max_size=20))
def test_vectorised_post_processing_agrees_with_the_scalar_rule(rows: list[list[float]]) -> None:
    fast = to_sentiments(np.asarray(rows))
    for row, got in zip(rows, fast, strict=True):
        ref = from_probs(row)
        assert got.score == ref.score and got.confidence == ref.confidence
        assert row[LABELS.index(got.label)] == max(row)


def test_logits_go_through_softmax() -> None:
    s = from_logits([0.0, 0.0, 10.0])
    assert s.label == "positive" and s.confidence > 0.99 and s.score > 0.99


def comment(i: int, room: str, text: str = "hello") -> Comment:
    return Comment(event_id=f"e{i}", room_id=room, user_id=f"u{i}", text=text, ts=1_700_000_000_000 + i * 100)


def test_scored_comment_keeps_the_comment_and_is_valid_on_the_wire() -> None:
    c = comment(1, "room-1", "主播yyds")
    sc = validate(scored(c, Sentiment("positive", 0.93, 0.95)))
    assert (sc.event_id, sc.room_id, sc.user_id, sc.text, sc.ts) == (c.event_id, c.room_id, c.user_id, c.text, c.ts)
    assert (sc.label, sc.score, sc.confidence) == ("positive", 0.93, 0.95)


def test_a_negative_burst_produces_valid_tiered_alerts_for_that_room_only() -> None:
    tracker = MoodTracker(MoodPolicy(min_comments=10))
    comments = [comment(i, "calm") for i in range(20)] + [comment(100 + i, "angry") for i in range(20)]
    pos, neg = Sentiment("positive", 0.8, 0.9), Sentiment("negative", -0.9, 0.95)
    # The angry room: 7 positive, then negatives: 30% at its 10th comment, 50% at its 14th.
    sentiments = [pos] * 20 + [pos] * 7 + [neg] * 13
    records, alerts = process_batch(comments, sentiments, tracker)
    assert [r.event_id for r in records] == [c.event_id for c in comments]
    assert [(a.room_id, a.level, a.ts) for a in alerts] == [
        ("angry", "warning", comments[29].ts), ("angry", "critical", comments[33].ts)
    ]
    for a in alerts:
        validate(a)
        assert a.kind == "negative_sentiment" and a.value >= a.threshold
    assert len({a.alert_id for a in alerts}) == 2


def test_alert_ids_are_deterministic() -> None:
    tracker1, tracker2 = MoodTracker(MoodPolicy(min_comments=10)), MoodTracker(MoodPolicy(min_comments=10))
    batch = [comment(i, "r") for i in range(15)]
    neg = [Sentiment("negative", -1.0, 1.0)] * 15
    _, a1 = process_batch(batch, neg, tracker1)
    _, a2 = process_batch(batch, neg, tracker2)
    assert [a.alert_id for a in a1] == [a.alert_id for a in a2] != []
    assert all(len(a.alert_id) <= 64 for a in a1)
    assert alert_id.__doc__


def test_mismatched_lengths_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError):
        process_batch([comment(1, "r")], [], MoodTracker())
