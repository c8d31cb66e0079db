"""What the runtime does after a transactional call fails or never returns (streams/runtime/recovery.py),
without Kafka: the pure decision, and the bounded call that turns "never returns" into a failure."""

from __future__ import annotations

import threading
import time
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.runtime.recovery import Call, Failure, Stalled, Step, call_bounded, next_step

CALLS: tuple[Call, ...] = get_args(Call)

failures = st.builds(Failure, fatal=st.booleans(), retriable=st.booleans(), requires_abort=st.booleans(),
                     stalled=st.booleans())
elapsed = st.floats(0, 1_000, allow_nan=False)
budgets = st.floats(0, 1_000, allow_nan=False)


@given(st.sampled_from(CALLS), failures, elapsed, budgets)
def test_every_failure_gets_a_step_and_a_stalled_or_fatal_call_always_restarts(
    call: Call, failure: Failure, elapsed_s: float, budget_s: float
) -> None:
    step = next_step(call, failure, elapsed_s=elapsed_s, budget_s=budget_s)
    assert isinstance(step, Step)
    if failure.stalled or failure.fatal:
        assert step is Step.RESTART  # a wedged or fenced producer is never asked anything again


@given(st.sampled_from(CALLS), failures, elapsed, budgets)
def test_nothing_is_retried_unless_retriable_and_within_its_budget(
    call: Call, failure: Failure, elapsed_s: float, budget_s: float
) -> None:
    if next_step(call, failure, elapsed_s=elapsed_s, budget_s=budget_s) is Step.RETRY:
        assert failure.retriable and elapsed_s < budget_s and not failure.stalled and not failure.fatal


@given(failures, elapsed, budgets)
def test_a_failed_abort_is_never_answered_by_another_abort(failure: Failure, elapsed_s: float, budget_s: float) -> None:
    for call in ("abort_transaction", "init_transactions"):
        assert next_step(call, failure, elapsed_s=elapsed_s, budget_s=budget_s) is not Step.ABORT


@given(st.sampled_from(["send_offsets_to_transaction", "commit_transaction"]), elapsed, budgets)
def test_an_abortable_error_in_a_commit_aborts_and_rewinds(call: Call, elapsed_s: float, budget_s: float) -> None:
    failure = Failure(requires_abort=True, retriable=True)
    assert next_step(call, failure, elapsed_s=elapsed_s, budget_s=budget_s) is Step.ABORT


def test_the_cases_seen_on_the_cluster() -> None:
    # send_offsets_to_transaction waiting forever for a dead group coordinator's broker
    stalled = Failure.no_answer("send_offsets_to_transaction", 40)
    assert next_step("send_offsets_to_transaction", stalled, elapsed_s=40, budget_s=60) is Step.RESTART
    # a commit that timed out (retriable): try it again, then give up and restart
    timed_out = Failure(retriable=True, reason="Local: Timed out")
    assert next_step("commit_transaction", timed_out, elapsed_s=31, budget_s=60) is Step.RETRY
    assert next_step("commit_transaction", timed_out, elapsed_s=61, budget_s=60) is Step.RESTART
    # fenced by a newer incarnation (fatal)
    assert next_step("commit_transaction", Failure(fatal=True), elapsed_s=0, budget_s=60) is Step.RESTART
    # neither retriable nor abortable (an error librdkafka gives no advice on): restart
    assert next_step("send_offsets_to_transaction", Failure(), elapsed_s=0, budget_s=60) is Step.RESTART


def test_a_kafka_error_is_classified_by_its_own_flags() -> None:
    from confluent_kafka import KafkaError

    error = KafkaError(KafkaError._TIMED_OUT, "timed out", fatal=False, retriable=True, txn_requires_abort=False)
    failure = Failure.of(error)
    assert (failure.fatal, failure.retriable, failure.requires_abort, failure.stalled) == (False, True, False, False)


def test_a_bounded_call_returns_its_result_or_raises_its_exception() -> None:
    assert call_bounded(lambda a, b: a + b, (2, 3), 10) == 5
    with pytest.raises(ValueError, match="no"):
        call_bounded(lambda: (_ for _ in ()).throw(ValueError("no")), (), 10)


def test_a_call_that_never_returns_is_reported_stalled_and_left_behind() -> None:
    release, returned = threading.Event(), threading.Event()

    def never_returns() -> None:
        release.wait()
        returned.set()

    with pytest.raises(Stalled):
        call_bounded(never_returns, (), 0.2, "send_offsets_to_transaction")
    assert not returned.is_set()  # the caller got on while the call still waited
    release.set()


class LeaderMovedConsumer:
    """A restore consumer whose remembered leader died: asking for the end fails until metadata is
    fetched again."""

    def __init__(self) -> None:
        self.refreshed = 0
        self.asked = 0

    def get_watermark_offsets(self, tp: object, timeout: float, cached: bool) -> tuple[int, int]:
        from confluent_kafka import KafkaError, KafkaException

        self.asked += 1
        if not self.refreshed:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get watermark offsets"))
        return 0, 42

    def list_topics(self, topic: str, timeout: float) -> None:
        self.refreshed += 1


def test_the_changelog_end_is_asked_again_of_a_fresh_leader_after_a_failed_ask() -> None:
    from confluent_kafka import TopicPartition

    from streams.runtime.changelog import _end_offset

    consumer = LeaderMovedConsumer()
    assert _end_offset(consumer, TopicPartition("t", 0), time.monotonic() + 600) == 42  # type: ignore[arg-type]
    assert (consumer.asked, consumer.refreshed) == (2, 1)


def test_the_changelog_end_gives_up_at_its_deadline() -> None:
    from confluent_kafka import KafkaException, TopicPartition

    from streams.runtime.changelog import _end_offset

    with pytest.raises(KafkaException):
        _end_offset(LeaderMovedConsumer(), TopicPartition("t", 0), time.monotonic() - 1)  # type: ignore[arg-type]


def test_one_helper_thread_serves_every_call_until_one_stalls_then_a_fresh_one_takes_over() -> None:
    import threading

    from streams.runtime.recovery import BoundedCaller

    caller = BoundedCaller("t")
    names = {caller(lambda: threading.current_thread().name, (), 10) for _ in range(50)}
    assert len(names) == 1 and names != {threading.current_thread().name}  # one thread, not the caller's
    with pytest.raises(ValueError, match="boom"):
        caller(lambda: (_ for _ in ()).throw(ValueError("boom")), (), 10)  # an error comes back, thread lives
    release = threading.Event()
    with pytest.raises(Stalled):
        caller(release.wait, (30,), 0.2, "commit_transaction")
    assert caller(lambda: 7, (), 10) == 7  # served by a new thread while the stuck one still waits
    release.set()
    caller.close()
