"""Rolling negative share per room and tiered alerts (warning / critical) with hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentiment.mood import MoodAlert, MoodPolicy, MoodTracker

POLICY = MoodPolicy(window_ms=10_000, min_comments=10, warning_share=0.3, critical_share=0.5, hysteresis=0.05)
T0 = 1_700_000_000_000


def feed(tracker: MoodTracker, room: str, labels: str, start: int, step_ms: int = 100) -> list[MoodAlert]:
    """'n' = negative, anything else = not negative; one comment every ``step_ms``."""
    alerts = []
    for i, ch in enumerate(labels):
        alert = tracker.observe(room, start + i * step_ms, ch == "n")
        if alert:
            alerts.append(alert)
    return alerts


def test_a_calm_room_raises_nothing() -> None:
    tracker = MoodTracker(POLICY)
    assert feed(tracker, "r1", "ppppnpppppppnppppppp" * 3, T0) == []


def test_a_spike_raises_warning_then_critical_once_each() -> None:
    tracker = MoodTracker(POLICY)
    alerts = feed(tracker, "r1", "pppppppppp" + "n" * 30, T0)
    assert [a.level for a in alerts] == ["warning", "critical"]
    warning, critical = alerts
    assert warning.negative_share >= 0.3 and critical.negative_share >= 0.5
    assert warning.threshold == 0.3 and critical.threshold == 0.5
    assert all(a.room_id == "r1" and a.comments >= POLICY.min_comments for a in alerts)


def test_few_comments_never_alert_however_negative() -> None:
    tracker = MoodTracker(POLICY)
    assert feed(tracker, "r1", "n" * (POLICY.min_comments - 1), T0) == []


def test_rooms_are_independent() -> None:
    tracker = MoodTracker(POLICY)
    feed(tracker, "angry", "n" * 20, T0)
    assert feed(tracker, "happy", "p" * 20, T0) == []
    assert tracker.share("angry") == 1.0 and tracker.share("happy") == 0.0


def test_recovery_then_a_new_spike_alerts_again() -> None:
    tracker = MoodTracker(POLICY)
    first = feed(tracker, "r", "p" * 10 + "n" * 10, T0)  # 50%: critical (passing warning)
    assert [a.level for a in first] == ["warning", "critical"]
    # 20 s of positive chat: the window (10 s) forgets the spike.
    assert feed(tracker, "r", "p" * 100, T0 + 3_000, step_ms=200) == []
    assert tracker.rooms["r"].level == "ok"
    again = feed(tracker, "r", "n" * 60, T0 + 25_000, step_ms=50)
    assert [a.level for a in again] == ["warning", "critical"]


def test_old_events_outside_the_window_do_not_count() -> None:
    tracker = MoodTracker(POLICY)
    feed(tracker, "r", "p" * 20, T0 + 60_000)
    assert tracker.observe("r", T0, True) is None
    assert tracker.share("r") == 0.0


def test_policy_rejects_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError):
        MoodPolicy(warning_share=0.6, critical_share=0.5)
    with pytest.raises(ValueError):
        MoodPolicy(window_ms=10)


events = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(min_value=0, max_value=40_000), st.booleans()), max_size=300
)


@given(events)
def test_share_matches_a_recount_of_the_window_and_alerts_only_rise(stream: list[tuple[str, int, bool]]) -> None:
    tracker = MoodTracker(POLICY)
    seen: dict[str, list[tuple[int, bool]]] = {"a": [], "b": []}
    last_level = {"a": 0, "b": 0}
    rank = {"ok": 0, "warning": 1, "critical": 2}
    for room, offset, negative in stream:
        ts = T0 + offset
        newest_before = max([t for t, _ in seen[room]], default=ts)
        alert = tracker.observe(room, ts, negative)
        newest = max(newest_before, ts)
        cutoff = (newest - POLICY.window_ms) // 1000
        if ts // 1000 > cutoff:
            seen[room].append((ts, negative))
        window = [n for t, n in seen[room] if t // 1000 > cutoff]
        expected = sum(window) / len(window) if window else 0.0
        assert tracker.share(room) == pytest.approx(expected)
        assert 0.0 <= tracker.share(room) <= 1.0
        level = rank[tracker.rooms[room].level]
        if alert is not None:
            assert rank[alert.level] > last_level[room]  # an alert is always a rise
            assert len(window) >= POLICY.min_comments
            assert alert.negative_share >= alert.threshold
        last_level[room] = level


@settings(deadline=None, max_examples=40)
@given(
    steps=st.lists(
        st.tuples(st.integers(-3_000, 2_500), st.sampled_from(["positive", "neutral", "negative"])),
        min_size=1, max_size=300,
    )
)
def test_the_gauge_shows_the_same_60_s_mood_the_alert_measures(steps: list[tuple[int, str]]) -> None:
    """The sentiment job's alerts (MoodTracker inside process_batch) and the counters job's gauge
    (sentiment_avg / negative_share of the room snapshot) fed the same scored comments: after every
    comment both hold the same window, and every alert's share is the gauge's share at that moment."""
    from schemas.events import Comment
    from sentiment.labels import Sentiment
    from sentiment.mood import window_mood
    from streams.counters.core import PartitionCounters
    from streams.sentiment.core import process_batch

    tracker = MoodTracker()
    counters = PartitionCounters()
    window_ms = MoodPolicy().window_ms
    ts = 1_700_000_000_000
    alerts = 0
    for i, (jump, label) in enumerate(steps):
        ts = max(ts + jump, 1_700_000_000_000)  # mostly forward, sometimes a late comment
        comment = Comment(event_id=f"c{i}", room_id="r", user_id="u", text="x", ts=ts)
        score = {"positive": 0.8, "neutral": 0.0, "negative": -0.6}[label]
        records, raised = process_batch([comment], [Sentiment(label, score, 0.9)], tracker)  # type: ignore[arg-type]
        counters.apply_all(records, 1_800_000_000_000)
        state = counters.rooms["r"].state
        gauge = window_mood(state.mood, state.mood_newest_ts, window_ms)
        alert_side = tracker.mood("r")
        assert (gauge.comments, gauge.negatives) == (alert_side.comments, alert_side.negatives)
        assert abs(gauge.score_sum - alert_side.score_sum) < 1e-9
        for alert in raised:
            alerts += 1
            assert gauge.negative_share is not None
            assert alert.value == round(gauge.negative_share, 4)
