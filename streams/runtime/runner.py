"""The Kafka shell of every job: poll, gate, hand batches to tasks, produce, commit -- nothing else.

One loop, two processing modes:

- **exactly once** (counters, flash sale): one transactional producer per worker
  (``transactional.id = <prefix><job>-<worker id>``).  Each transaction holds the tasks' outputs,
  their dead letters, one changelog record per changed key and the input offsets
  (``send_offsets_to_transaction`` with the consumer's group metadata, KIP-447).  Either all of it
  becomes visible to ``read_committed`` readers or none of it does.  A restarted worker's
  ``init_transactions`` aborts what its previous incarnation left open; a zombie that lost its
  partitions to another worker is fenced by the group generation when it tries to commit.
- **at least once** (the ClickHouse sink): no producer; at each checkpoint the job's sink is
  flushed first and the offsets are committed after it (Quix Streams' Checkpoint order), so a crash
  replays and the idempotent tables collapse the replay.

Assignment: positions come from the group's committed offsets (read with require-stable semantics,
so an open transaction of a previous owner is resolved first); then each new partition's task is
rebuilt from its changelog.  Revoke commits what is open before the partitions go.  Lost aborts the
open transaction and rewinds every remaining task (its work was in that transaction too).
A transaction that must be aborted rewinds the same way: state back to the changelog, positions
back to the committed offsets; the core is deterministic, so the batch is decided again identically.

Every blocking transactional call has a deadline of its own (librdkafka can ignore the call's timeout
when a coordinator's broker died): what follows a failed or stalled call is decided by
:func:`streams.runtime.recovery.next_step` -- retry it, abort and rewind, or restart in process with
new clients (a stalled producer is abandoned; its successor fences it).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from base.clock import now_ms
from base.kafka import consumer_config, make_admin, producer_config
from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, DeadLetter, encode
from schemas.base import Event
from streams.dead_letters import dead_letter_of
from streams.runtime.changelog import ensure_changelog, input_partition_count, read_partition, restore_consumer
from streams.runtime.commit import CommitPolicy
from streams.runtime.gate import Gate, Positions
from streams.runtime.job import Job, Output, Task
from streams.runtime.recovery import BoundedCaller, Call, Failure, Stalled, Step, call_bounded, next_step

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer, TopicPartition

log = get_logger(__name__)

Mode = Literal["exactly_once", "at_least_once"]

#: In-process restarts after fatal client errors allowed within the window before the process gives up.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 120.0


class RestartNeeded(RuntimeError):
    """A transactional call failed in a way only new clients can cure (fatal, stalled, out of retries)."""


class _MustAbort(RuntimeError):
    """A transactional call failed with an abortable error: abort the transaction and rewind."""


class Sink(Protocol):
    """Where an at-least-once job writes (the ClickHouse sink): flushed before offsets are committed."""

    def due(self, wall_ms: int) -> bool: ...

    def flush(self) -> None: ...

    def discard(self) -> None: ...

    def caught_up(self) -> None:
        """Every assigned partition has been read to its end and written (e.g. rebuild rollups now)."""


@dataclass
class Checkpoint:
    """What one commit covered, for observers (the benches) and the logs."""

    events: list[Event]
    outputs: list[Output]
    decide_s: float
    produce_s: float
    commit_s: float
    wall_ms: int


#: Called after every successful commit; the benches observe the jobs through it.
CommitHook = Callable[[Checkpoint], None]


@dataclass
class RunnerConfig:
    mode: Mode = "exactly_once"
    policy: CommitPolicy = field(default_factory=CommitPolicy)
    batch_size: int = 5000
    poll_timeout_s: float = 0.05
    transaction_timeout_ms: int = 10_000
    producer_overrides: dict[str, Any] = field(default_factory=dict)
    #: The timeout handed to each blocking transactional call (librdkafka's own).
    api_timeout_s: float = 30.0
    #: How much longer than its own timeout a call may take before it counts as stalled.
    stall_grace_s: float = 10.0
    #: How long a call answered with retriable errors is retried before the runner restarts.
    retry_budget_s: float = 60.0


class Runner:
    """One worker process's share of one job (one member of the job's consumer group)."""

    def __init__(
        self, settings: Settings, job: Job, worker_id: str, config: RunnerConfig | None = None,
        *, sink: Sink | None = None, on_commit: CommitHook | None = None,
    ) -> None:
        self.settings = settings
        self.job = job
        self.worker_id = worker_id
        self.config = config or RunnerConfig()
        if (self.config.mode == "at_least_once") != (sink is not None):
            raise ValueError("an at-least-once job writes through a sink; an exactly-once job has none")
        self.sink = sink
        self.on_commit = on_commit
        self.stop_event = threading.Event()
        self.stats: Counter[str] = Counter()
        self.tasks: dict[int, Task] = {}
        self.positions = Positions()
        self.inputs = {settings.topic(name): name for name in job.inputs}
        self.changelog = settings.topic(job.changelog) if job.changelog else None
        self.gate: Gate | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._restorer: Consumer | None = None
        self._in_txn = False
        self._pending = False  # admitted input not yet committed (at-least-once)
        self._discarding = False  # set while a failed batch is thrown away: a revoke must not commit it
        self._wedged = False  # a call on the producer never returned: never touch that producer again
        self._calls = BoundedCaller(f"{job.name}-txn")  # the transactional calls, each with a deadline
        self._seen_events: list[Event] = []
        self._seen_outputs: list[Output] = []
        self._timings = [0.0, 0.0]
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()

    # ---- clients -------------------------------------------------------------------------------

    def _open(self) -> Consumer:
        from confluent_kafka import Consumer, Producer

        s, job = self.settings, self.job
        partitions = input_partition_count(make_admin(s), list(self.inputs))
        self.gate = Gate(self.inputs, job.owned, partitions=partitions, max_bytes=s.max_message_bytes,
                         max_future_skew_ms=s.max_future_skew_ms)
        if self.changelog:
            ensure_changelog(s, self.changelog, partitions)
        extra: dict[str, Any] = {
            "client.id": f"{job.name}-{self.worker_id}",
            "isolation.level": "read_committed",
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "range",  # partition p of every input to one member
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "max.poll.interval.ms": 300_000,
            "enable.partition.eof": self.sink is not None,  # the sink wants to know when a replay is read
            **job.extra_consumer_config,
        }
        if job.static_membership:
            extra["group.instance.id"] = s.topic(f"{job.name}-{self.worker_id}")
        if self.config.mode == "exactly_once":
            self._producer = Producer(producer_config(s, {
                "transactional.id": s.topic(f"{job.name}-{self.worker_id}"),
                "transaction.timeout.ms": self.config.transaction_timeout_ms,
                **self.config.producer_overrides,
            }))
            self._wedged = False
            self._txn("init_transactions", self._producer.init_transactions, max(60.0, self.config.api_timeout_s))
        consumer = self._consumer = Consumer(consumer_config(s, s.topic(job.name), extra))
        consumer.subscribe(list(self.inputs), on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_lost)
        return consumer

    # ---- rebalances ------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Positions first (they wait for a previous owner's open transaction), then state."""
        started = time.monotonic()
        for tp in consumer.committed(partitions, timeout=60):
            self.positions.own(tp.topic, tp.partition, tp.offset)
        restored = 0
        for p in sorted({tp.partition for tp in partitions} - self.tasks.keys()):
            records = self._read_changelog(p)
            restored += len(records)
            self.tasks[p] = self.job.new_task(p, records)
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.stats["restored_records"] += restored
        log.info(f"{self.job.name}_assigned", worker=self.worker_id, partitions=sorted(self.tasks),
                 restored_records=restored, restore_s=round(time.monotonic() - started, 3))

    def _read_changelog(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        if not self.changelog:
            return []
        if self._restorer is None:
            self._restorer = restore_consumer(self.settings, self.job.name)
        return read_partition(self._restorer, self.changelog, partition)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit what is open while we still own the partitions; then let them go.  While the runner
        is discarding a failed batch (:meth:`_reset`), only let them go."""
        if not self._discarding:
            self._checkpoint(consumer)
        self._forget(partitions)
        log.info(f"{self.job.name}_revoked", worker=self.worker_id,
                 partitions=sorted({tp.partition for tp in partitions}))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Taken away without a chance to commit: drop the open work; the new owner redoes it."""
        self._abort()
        if self.sink is not None:
            self.sink.discard()
        self._forget(partitions)
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._rewind(consumer, exclude=lost)  # the partitions we keep had work in that transaction too
        log.warning(f"{self.job.name}_lost", worker=self.worker_id,
                    partitions=sorted({tp.partition for tp in partitions}))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        for p in gone:
            self.tasks.pop(p, None)
        self.positions.forget(gone)
        pairs = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= pairs
        self._at_end -= pairs

    # ---- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Process until :attr:`stop_event` is set; then commit what is open and leave the group.

        A fatal client error (a fenced producer or static member, which a broker's death can cause
        when the coordinator moves) does not leave a live process that no longer answers: the runner
        drops its clients and state and starts again from the committed offsets and changelog, as a
        restarted process would.  So does a transactional call that stalled (never returned) or kept
        failing: see :mod:`streams.runtime.recovery`.  More than :data:`MAX_RESTARTS` in :data:`RESTART_WINDOW_S` means
        something else holds our identity (two workers with one id): the error then ends the process.
        """
        restarts: list[float] = []
        while True:
            try:
                self._run_once()
                self._calls.close()
                return
            except Exception as exc:
                from confluent_kafka import KafkaException

                if not isinstance(exc, KafkaException | RestartNeeded) or self.stop_event.is_set():
                    raise
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
                if len(restarts) > MAX_RESTARTS:
                    raise
                self.stats["restarts"] += 1
                log.warning(f"{self.job.name}_restarting", worker=self.worker_id, error=str(exc),
                            restarts_in_window=len(restarts))
                self._reset()
                time.sleep(1.0)

    def _reset(self) -> None:
        """Forget clients, state and positions after an error, and commit NOTHING of the failed batch.

        The error may have struck half-way through a transaction (say, a changelog record the broker
        refused): its outputs, offsets and part of its changelog are in the open transaction.  Closing
        the consumer runs the revoke callback, which would commit them; so the open transaction is
        aborted first and the callback told to only forget.  If the abort fails too, the next
        producer with our transactional.id aborts the transaction when it starts (init_transactions).
        A wedged producer (a call on it never returned) is not asked to abort: it is abandoned as is,
        and fenced by that successor.
        """
        self._discarding = True
        try:
            if self._in_txn and self._producer is not None and not self._wedged:
                try:
                    call_bounded(self._producer.abort_transaction, (self.config.api_timeout_s,),
                                 self.config.api_timeout_s + self.config.stall_grace_s, "abort_transaction")
                except Exception as exc:  # a fenced producer cannot abort: its successor will
                    log.info(f"{self.job.name}_abort_failed", error=str(exc))
            self._in_txn = self._pending = False
            if self.sink is not None:
                self.sink.discard()
            self.tasks.clear()
            for client in (self._consumer, self._restorer):
                if client is not None:
                    try:  # bounded too: a client that cannot close is left behind, not waited for
                        call_bounded(client.close, (), self.config.api_timeout_s + self.config.stall_grace_s, "close")
                    except Exception as exc:  # a fenced or broken client may refuse to close cleanly
                        log.info(f"{self.job.name}_close_failed", error=str(exc))
        finally:
            self._discarding = False
        self._consumer = self._producer = self._restorer = None
        self._wedged = False
        self.positions = Positions()
        self._assigned.clear()
        self._at_end.clear()
        self._seen_events, self._seen_outputs = [], []

    def _run_once(self) -> None:
        consumer = self._open()
        cfg = self.config
        last_commit = time.monotonic()
        clean = False
        try:
            while not self.stop_event.is_set():
                messages = consumer.consume(num_messages=cfg.batch_size, timeout=cfg.poll_timeout_s)
                wall = now_ms()
                started = time.perf_counter()
                if messages:
                    self._process(messages, wall)
                produced = self._punctuate(wall)
                self._timings[0] += time.perf_counter() - started
                backlog = len(messages) == cfg.batch_size
                since = (time.monotonic() - last_commit) * 1000
                pending = self._in_txn or self._pending
                if self.sink is not None:
                    due = pending and self.sink.due(wall)
                else:
                    due = cfg.policy.due(pending=pending, since_last_ms=since, backlog=backlog, produced=produced)
                if due:
                    self._checkpoint(consumer)
                    last_commit = time.monotonic()
                    if self.sink is not None and self._caught_up():  # a busy stream is rarely idle
                        self.sink.caught_up()
                elif self.sink is not None and not messages and not pending and self._caught_up():
                    self.sink.caught_up()
            clean = True
        finally:
            if clean:  # a stop: commit what is open and leave; after an error the restart starts afresh
                try:
                    self._checkpoint(consumer)
                finally:
                    consumer.close()  # a dynamic member leaves the group: another worker takes over at once
                    if self._producer is not None and not self._wedged:
                        self._producer.flush(10)
                    if self._restorer is not None:
                        self._restorer.close()

    def _partition_caught_up(self, partition: int) -> bool:
        """Every input of ``partition`` read up to the end the broker reports NOW.

        Asked of the broker (not librdkafka's cached watermark, which can miss a message appended a
        moment ago), and only when a timer is about to fire.  A read position short of the end by
        transaction control records only (a transactional producer's commit marker) counts as caught
        up: the consumer's own position, which moves past them, is consulted too."""
        from confluent_kafka import KafkaException, TopicPartition

        assert self._consumer is not None
        consumer = self._consumer
        for topic in self.inputs:
            tp = TopicPartition(topic, partition)
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=2, cached=False)
            except KafkaException:
                return False
            mine = self.positions.next.get((topic, partition))
            if mine is None:
                return False
            fetched = consumer.position([tp])[0].offset
            position = max(mine if mine >= 0 else low, fetched if fetched >= 0 else -1)
            if position < high:
                return False
        return True

    def _caught_up(self) -> bool:
        return bool(self._assigned) and self._assigned <= self._at_end

    @property
    def caught_up(self) -> bool:
        """Every assigned partition read to its end, and everything read committed (at-least-once)."""
        return self._caught_up() and not self._pending

    def _begin(self) -> None:
        if self._producer is not None and not self._in_txn:
            self._producer.begin_transaction()
            self._in_txn = True

    def _process(self, messages: list[Message], wall: int) -> None:
        """Gate the batch (one call: the gate's loop is the hot path), then hand each partition's
        admitted events to its task."""
        from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, KafkaException

        assert self.gate is not None
        tasks = self.tasks
        got = self.gate.sort(messages, self.positions, wall, eof_code=KafkaError._PARTITION_EOF,
                             log_append_time=TIMESTAMP_LOG_APPEND_TIME, traced=self.job.traced,
                             at_end=self._at_end)
        if got.error is not None:
            raise KafkaException(got.error)
        if got.stale:
            self.stats["skipped_stale"] += got.stale
        by_part, dead, sources, admitted = got.by_partition, got.dead, got.sources, got.admitted
        if not admitted:
            return
        self._begin()
        self._pending = True
        for p, batch in by_part.items():
            task = tasks.get(p)
            if task is None:  # not ours any more (revoked inside this poll): stale
                self.stats["skipped_stale"] += len(batch)
                continue
            task.process(batch, wall)
            self.stats["events"] += len(batch)
            if self.on_commit is not None:
                self._seen_events += batch
            for event, refusal, reason in task.take_rejections():
                topic, p2, offset, key, raw = sources.get(id(event), ("", p, -1, None, None))
                dead.append(dead_letter_of(raw or encode(event), source_topic=topic, key=key, partition=p2,
                                           offset=offset, now_ms=wall, error=refusal, reason=reason))
        if dead:
            self._produce_dead(dead)

    def _produce_dead(self, dead: list[DeadLetter]) -> None:
        self.stats["dead_letters"] += len(dead)
        if self._producer is None:  # the sink owns no input topic: nothing of its own to dead-letter
            return
        topic = self.settings.topic("dead-letters")
        for letter in dead:
            self._produce(topic, encode(letter), letter.source_topic.encode())

    def _punctuate(self, wall: int) -> bool:
        """Wall-clock work of every task; produce what it caused.  True if anything was produced."""
        produced = False
        for p, task in self.tasks.items():
            task.punctuate(wall, lambda p=p: self._partition_caught_up(p))  # type: ignore[misc]
            outputs = task.take_outputs()
            if outputs:
                self._begin()
                self._send(outputs)
                produced = True
        return produced

    def _send(self, outputs: list[Output]) -> None:
        started = time.perf_counter()
        s = self.settings
        for name, event in outputs:
            spec = TOPICS[name]
            self._produce(s.topic(name), encode(event), spec.key_of(event))
        self.stats["outputs"] += len(outputs)
        if self.on_commit is not None:
            self._seen_outputs += outputs
        self._timings[1] += time.perf_counter() - started

    def _produce(self, topic: str, value: bytes | None, key: bytes, partition: int = -1) -> None:
        assert self._producer is not None
        while True:
            try:
                if partition >= 0:
                    self._producer.produce(topic, value, key, partition=partition)
                else:
                    self._producer.produce(topic, value, key)
                return
            except BufferError:  # the local queue is full: let librdkafka send, then retry
                self._producer.poll(0.05)

    # ---- commit, abort, rewind ------------------------------------------------------------------

    def _checkpoint(self, consumer: Consumer) -> None:
        """Flush the sinks, write the changelog, commit outputs + state + offsets as one."""
        if self.sink is not None:
            if self._pending:
                self.sink.flush()
                self._commit_offsets(consumer)
            return
        if not self._in_txn:
            return
        producer = self._producer
        assert producer is not None
        if self.changelog:
            for p, task in self.tasks.items():
                for key, value in task.take_changes():
                    self._produce(self.changelog, value, key, partition=p)
        started = time.monotonic()
        timeout = self.config.api_timeout_s
        try:
            offsets = self._offsets()
            if offsets:
                self._txn("send_offsets_to_transaction", producer.send_offsets_to_transaction, offsets,
                          consumer.consumer_group_metadata(), timeout)
            self._txn("commit_transaction", producer.commit_transaction, timeout)
        except _MustAbort as exc:
            log.warning(f"{self.job.name}_transaction_aborted", worker=self.worker_id, error=str(exc))
            self._abort()
            self._rewind(consumer)
            return
        self._in_txn = self._pending = False
        took = time.monotonic() - started
        self.stats["commits"] += 1
        self.stats["commit_ms_total"] += int(took * 1000)
        self.stats["commit_ms_max"] = max(self.stats["commit_ms_max"], int(took * 1000))
        self._notify(took)

    def _offsets(self) -> list[TopicPartition]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(t, p, o) for t, p, o in self.positions.committable()]

    def _commit_offsets(self, consumer: Consumer) -> None:
        offsets = self._offsets()
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
        self._pending = False
        self.stats["commits"] += 1
        self._notify(0.0)

    def _notify(self, commit_s: float) -> None:
        if self.on_commit is not None:
            self.on_commit(Checkpoint(self._seen_events, self._seen_outputs, self._timings[0], self._timings[1],
                                      commit_s, now_ms()))
        self._seen_events, self._seen_outputs = [], []
        self._timings = [0.0, 0.0]

    def _txn(self, call: Call, fn: Callable[..., Any], *args: Any) -> None:
        """One blocking transactional call, bounded by its own timeout plus a grace; then what
        :func:`~streams.runtime.recovery.next_step` says: retry it, raise :class:`_MustAbort` (the caller
        aborts and rewinds) or raise :class:`RestartNeeded` (the loop restarts with new clients)."""
        from confluent_kafka import KafkaException

        cfg = self.config
        deadline = float(args[-1]) + cfg.stall_grace_s  # every call's last argument is its own timeout
        first = time.monotonic()
        while True:
            try:
                self._calls(fn, args, deadline, call)
                return
            except Stalled:
                self._wedged = True
                failure = Failure.no_answer(call, deadline)
            except KafkaException as exc:
                failure = Failure.of(exc.args[0])
            step = next_step(call, failure, elapsed_s=time.monotonic() - first, budget_s=cfg.retry_budget_s)
            self.stats[f"txn_step_{step.value}"] += 1
            log.warning(f"{self.job.name}_transaction_call_failed", worker=self.worker_id, call=call,
                        error=failure.reason, stalled=failure.stalled, step=step.value)
            if step is Step.RETRY:
                time.sleep(0.5)
                continue
            if step is Step.ABORT:
                raise _MustAbort(failure.reason)
            raise RestartNeeded(f"{call}: {failure.reason}")

    def _abort(self) -> None:
        if self._in_txn and self._producer is not None:
            self._txn("abort_transaction", self._producer.abort_transaction, self.config.api_timeout_s)
        self._in_txn = self._pending = False
        self._seen_events, self._seen_outputs = [], []

    def _rewind(self, consumer: Consumer, exclude: set[tuple[str, int]] | None = None) -> None:
        """State back to the changelog, positions back to the committed offsets, inputs re-read."""
        gone = exclude or set()
        assignment = [tp for tp in consumer.assignment()
                      if tp.topic in self.inputs and (tp.topic, tp.partition) not in gone]
        self.tasks.clear()
        self.positions = Positions()
        if not assignment:
            return
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self._on_assign(consumer, assignment)
        for tp in consumer.committed(assignment, timeout=30):
            # nothing committed yet: what the aborted transaction read must be read again from the start
            consumer.seek(tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))
