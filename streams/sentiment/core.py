"""Pure decisions of the sentiment job: which records a scored batch of comments produces.

The worker only moves bytes; this module turns (comments, their sentiments, the rooms' mood) into
ScoredComment and Alert events, so the rules are tested without Kafka or a model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from schemas.events import Alert, Comment, ScoredComment
from sentiment.labels import Sentiment
from sentiment.mood import MoodAlert, MoodTracker

ALERT_KIND = "negative_sentiment"


def scored(comment: Comment, sentiment: Sentiment) -> ScoredComment:
    """The comment with its label, score and confidence (same ids, room, user, text and time)."""
    return ScoredComment(
        event_id=comment.event_id,
        room_id=comment.room_id,
        user_id=comment.user_id,
        text=comment.text,
        label=sentiment.label,
        score=min(max(sentiment.score, -1.0), 1.0),
        confidence=min(max(sentiment.confidence, 0.0), 1.0),
        ts=comment.ts,
    )


def alert_id(alert: MoodAlert) -> str:
    """Deterministic id (a replay of the same rise gives the same id, so consumers can dedupe)."""
    digest = hashlib.sha1(f"{alert.room_id}|{alert.level}|{alert.ts}".encode()).hexdigest()[:24]
    return f"sentiment-{digest}"


def to_alert(alert: MoodAlert) -> Alert:
    share = round(alert.negative_share * 100)
    return Alert(
        alert_id=alert_id(alert),
        room_id=alert.room_id,
        kind=ALERT_KIND,
        level=alert.level,
        message=(
            f"{share}% of the last {alert.comments} comments are negative "
            f"({alert.level} at {round(alert.threshold * 100)}%)"
        ),
        value=alert.negative_share,
        threshold=alert.threshold,
        ts=alert.ts,
    )


def process_batch(
    comments: Sequence[Comment], sentiments: Sequence[Sentiment], mood: MoodTracker
) -> tuple[list[ScoredComment], list[Alert]]:
    """Score records for every comment, in order, and an alert for every room whose level rose."""
    if len(comments) != len(sentiments):
        raise ValueError(f"{len(comments)} comments but {len(sentiments)} sentiments")
    out: list[ScoredComment] = []
    alerts: list[Alert] = []
    for comment, sentiment in zip(comments, sentiments, strict=True):
        out.append(scored(comment, sentiment))
        rise = mood.observe(comment.room_id, comment.ts, sentiment.label == "negative", sentiment.score)
        if rise is not None:
            alerts.append(to_alert(rise))
    return out, alerts


class BatchDeliveries:
    """The broker's answers for one batch's records: the batch is settled once every record was
    acknowledged, or at the first record that failed (that batch must never be acked).

    Fed one answer per record (``error`` is ``None`` for an acknowledged one) by the producer's
    delivery callbacks, from one thread; :meth:`answer` is true exactly once, on the answer that
    settles the batch, so the caller wakes the batch's waiter once.
    """

    __slots__ = ("error", "expected", "pending")

    def __init__(self, expected: int) -> None:
        if expected < 1:
            raise ValueError("a batch with no records has nothing to wait for")
        self.expected = expected
        self.pending = expected
        self.error: object | None = None

    @property
    def settled(self) -> bool:
        return self.pending == 0 or self.error is not None

    def answer(self, error: object | None) -> bool:
        """Record one record's answer; true when this answer settles the batch."""
        if self.settled:
            return False
        if error is not None:
            self.error = error
            return True
        self.pending -= 1
        return self.pending == 0
