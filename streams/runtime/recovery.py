"""What the runner does after a transactional call fails or never returns: a pure decision, tested alone.

Every blocking call on the transactional producer (``init_transactions``, ``send_offsets_to_transaction``,
``commit_transaction``, ``abort_transaction``) runs with a deadline (:class:`BoundedCaller`), because
librdkafka does not always honour the call's own timeout: when the broker it remembers as the consumer
group's coordinator has died and dropped out of the cluster's metadata, ``send_offsets_to_transaction``
can wait for that broker forever (librdkafka issues #5456 and #5511, seen in the three-broker sale
test: the counters worker stopped counting for good after its coordinator's broker was SIGKILLed).
A call that misses its deadline is *stalled*, and the producer is *wedged*: no later call on it can be
trusted to return either.

The steps, strongest last:

- ``RETRY`` the same call in the same transaction: librdkafka says a retriable error (a timed-out
  commit, say) may be retried, and the outcome of the first attempt is then learnt from the second.
- ``ABORT`` the transaction and rewind (state back to the changelog, positions back to the committed
  offsets): for an abortable error.  The transaction's outputs, changelog records and offsets vanish
  together, and the core decides the batch again identically.
- ``RESTART`` the runner in process: drop the consumer and the producer (a wedged one is abandoned,
  never touched again) and open new ones, as a restarted process would.  The new producer's
  ``init_transactions`` with the same ``transactional.id`` fences the old one and aborts its open
  transaction; the new consumer reads the committed offsets (require-stable) and the tasks are
  rebuilt from the changelog, so nothing is lost or counted twice.  For a fatal error, a stall, an
  error that is neither retriable nor abortable, and a retriable error that outlasted its budget.

What the function guarantees (``tests/unit/test_runtime_recovery.py``): a stalled or fatal call always
restarts; an abort is never answered by another abort; nothing is retried past the budget or without
being retriable; and every failure gets a step (the runner never waits on a failure it cannot name).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

Call = Literal["init_transactions", "send_offsets_to_transaction", "commit_transaction", "abort_transaction"]


class Step(Enum):
    RETRY = "retry"
    ABORT = "abort"
    RESTART = "restart"


@dataclass(frozen=True)
class Failure:
    """What went wrong with one call: librdkafka's error flags, or no answer at all (``stalled``)."""

    fatal: bool = False
    retriable: bool = False
    requires_abort: bool = False
    stalled: bool = False
    reason: str = ""

    @classmethod
    def of(cls, error: Any) -> Failure:
        """From a ``confluent_kafka.KafkaError``."""
        return cls(fatal=bool(error.fatal()), retriable=bool(error.retriable()),
                   requires_abort=bool(error.txn_requires_abort()), reason=str(error))

    @classmethod
    def no_answer(cls, call: str, waited_s: float) -> Failure:
        return cls(stalled=True, reason=f"{call} did not return within {waited_s:.0f} s")


def next_step(call: Call, failure: Failure, *, elapsed_s: float, budget_s: float) -> Step:
    """The step after ``call`` failed with ``failure``, ``elapsed_s`` after its first attempt began."""
    if failure.stalled or failure.fatal:
        return Step.RESTART  # a wedged or fenced producer: only a new one with our transactional.id helps
    if call == "abort_transaction":
        if failure.retriable and elapsed_s < budget_s:
            return Step.RETRY
        return Step.RESTART  # the next producer's init_transactions aborts what we could not
    if call == "init_transactions":
        return Step.RETRY if failure.retriable and elapsed_s < budget_s else Step.RESTART
    if failure.requires_abort:
        return Step.ABORT
    if failure.retriable and elapsed_s < budget_s:
        return Step.RETRY
    return Step.RESTART


class Stalled(Exception):
    """A call did not return within its deadline (its thread is left to finish on its own)."""


class BoundedCaller:
    """Runs calls with a deadline on one long-lived helper thread: the result, the call's exception, or
    :class:`Stalled` once ``deadline_s`` has passed.

    confluent-kafka releases the GIL inside librdkafka's blocking calls, so the helper waits there while
    the caller gets on.  One thread serves every call (the flash sale commits every few milliseconds;
    a new thread per call cost 0.1-0.2 ms of CPU each).  A stalled call cannot be cancelled: its thread
    (a daemon) and whatever it holds stay until librdkafka lets go, so that thread is abandoned and the
    next call starts a fresh one; the caller must stop using the client the stalled call was made on."""

    def __init__(self, name: str = "txn") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] | None = None

    def __call__(self, fn: Callable[..., Any], args: tuple[Any, ...], deadline_s: float, name: str = "call") -> Any:
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._jobs,), name=f"{self.name}-calls", daemon=True).start()
        job = _Job(fn, args)
        self._jobs.put(job)
        if not job.done.wait(deadline_s):
            self._jobs = None  # its thread is stuck inside fn: leave it there
            raise Stalled(f"{name} did not return within {deadline_s:.0f} s")
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        """Let the helper thread end (after the call it is in, if any)."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None


class _Job:
    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def _serve(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        try:
            job.result = job.fn(*job.args)
        except BaseException as exc:  # handed to the caller
            job.error = exc
        job.done.set()


def call_bounded(fn: Callable[..., Any], args: tuple[Any, ...], deadline_s: float, name: str = "call") -> Any:
    """One bounded call on a helper thread of its own (see :class:`BoundedCaller`), for rare calls."""
    caller = BoundedCaller(name)
    try:
        return caller(fn, args, deadline_s, name)
    finally:
        caller.close()
