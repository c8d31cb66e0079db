"""The counters job's I/O shell: Kafka in, room-counters snapshots and dead letters out, exactly once.

Why a confluent-kafka loop and not a Faust agent: measured on this 2-core machine, stock Faust
spends its time creating two asyncio tasks per message (~12k events/s whatever the agent does,
~3.7k/s with a table write per event), while the job needs >= 30k/s.  This loop does the same
work per *batch*: it consumes up to ``batch_size`` messages, folds them into the pure
:class:`~streams.counters.core.PartitionCounters` of their partition, and every
``commit_interval_ms`` writes, in ONE Kafka transaction, the snapshots of closed windows, the dead
letters, one changelog record per changed key and the consumer offsets.

Processing guarantee: exactly once.  Outputs, state and offsets commit atomically; a worker killed
with ``kill -9`` leaves an open transaction that the broker aborts (at once when the worker comes
back with the same ``--worker-id``, i.e. the same ``transactional.id``; otherwise after
``transaction.timeout.ms``).  The next owner of a partition rebuilds its state from the changelog
and resumes from the offsets committed with it.

Partitioning: every room-keyed input topic must have the same partition count and be produced
with the same partitioner (Kafka's default murmur2), so that one partition number holds all of a
room's events; the range assignor then hands partition *p* of every input to one worker.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, ValidationError, encode
from schemas.base import Event
from schemas.events import RoomCounters
from streams.counters.changelog import changelog_topic, ensure_changelog, read_partition
from streams.counters.core import CounterConfig, PartitionCounters
from streams.dead_letters import parse_or_dead_letter
from streams.partitioning import default_partition

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer, TopicPartition

log = get_logger(__name__)

#: Logical input topics; the first three are validated (and dead-lettered) by this job alone.
OWNED_INPUTS = ("comments", "likes", "presence")
OTHER_INPUTS = ("scored-comments", "order-results", "stock")
INPUTS = OWNED_INPUTS + OTHER_INPUTS

#: Called after each committed transaction with the events and snapshots it covered (bench, sink).
Listener = Callable[[list[Event], list[RoomCounters]], None]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CountersWorker:
    """One process's share of the counters job (one member of the ``counters`` consumer group)."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str = "1",
        *,
        config: CounterConfig | None = None,
        batch_size: int = 5000,
        commit_interval_ms: int = 500,
        backlog_commit_interval_ms: int = 1000,
        listener: Listener | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.config = config or CounterConfig()
        self.batch_size = batch_size
        self.commit_interval_ms = commit_interval_ms
        self.backlog_commit_interval_ms = backlog_commit_interval_ms
        self.listener = listener
        self.parts: dict[int, PartitionCounters] = {}
        #: Next offset to apply per owned (topic, partition); -1 = none committed yet, take any.
        self._next: dict[tuple[str, int], int] = {}
        self._checked_keys: set[tuple[str, bytes]] = set()
        self.stats: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self._topics = {settings.topic(name): name for name in INPUTS}
        self._decoders = {
            settings.topic(name): msgspec.json.Decoder(TOPICS[name].event).decode for name in INPUTS
        }
        self._owned = {settings.topic(name) for name in OWNED_INPUTS}
        self._counters_topic = settings.topic("room-counters")
        self._dead_topic = settings.topic("dead-letters")
        self._changelog = changelog_topic(settings)
        self._pending_events: list[Event] = []
        self._pending_snaps: list[RoomCounters] = []
        self._in_txn = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    # ---- Kafka clients -------------------------------------------------------------------------

    def _client_configs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        s = self.settings
        consumer = {
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": f"{s.topic_prefix}counters",
            "client.id": f"counters-{self.worker_id}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "range",  # partition p of every input to one member
            "fetch.queue.backoff.ms": 1,  # librdkafka's 1000 ms default idles a fast loop ~85% of the time
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "log_level": 3,
        }
        producer = {
            "bootstrap.servers": s.kafka_bootstrap,
            "transactional.id": f"{s.topic_prefix}counters-{self.worker_id}",
            "transaction.timeout.ms": 10_000,
            "partitioner": "murmur2_random",  # the Java/aiokafka default, as the other producers use
            "linger.ms": 5,
            "log_level": 3,
        }
        return consumer, producer

    def _open(self) -> None:
        from confluent_kafka import Consumer, Producer

        ensure_changelog(self.settings)
        consumer_conf, producer_conf = self._client_configs()
        self._producer = Producer(producer_conf)
        self._producer.init_transactions(30)
        self._consumer = Consumer(consumer_conf)
        self._consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    # ---- rebalances ----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore the state of new partitions and note the committed offset that goes with it."""
        started = time.monotonic()
        for tp in consumer.committed(partitions, timeout=60):
            self._next[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else -1
        for p in sorted({tp.partition for tp in partitions}):
            if p not in self.parts:
                records = read_partition(self.settings, p)
                self.parts[p] = PartitionCounters.restore(records, self.config, wall_ms=now_ms())
                self.stats["restored_records"] += len(records)
        gc.freeze()  # restored state lives long: keep it out of every later collection's scan
        log.info("counters_assigned", worker=self.worker_id, partitions=sorted(self.parts),
                 restore_s=round(time.monotonic() - started, 3))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._in_txn:
            self._commit(consumer)
        for tp in partitions:
            self.parts.pop(tp.partition, None)
            self._next.pop((tp.topic, tp.partition), None)
        log.info("counters_revoked", worker=self.worker_id, partitions=sorted({tp.partition for tp in partitions}))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away without a chance to commit: drop their uncommitted work."""
        self._abort()
        self.parts.clear()
        self._next.clear()
        log.warning("counters_lost", worker=self.worker_id)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Process until :attr:`stop_event` is set; then commit and leave the group cleanly."""
        self._open()
        assert self._consumer is not None and self._producer is not None
        consumer = self._consumer
        last_commit = time.monotonic()
        try:
            while not self.stop_event.is_set():
                messages = consumer.consume(num_messages=self.batch_size, timeout=0.05)
                wall = now_ms()
                if messages:
                    self._begin()
                    self._fold(messages, wall)
                snaps: list[RoomCounters] = []
                for part in self.parts.values():
                    snaps += part.emit(wall)
                if snaps:
                    self._begin()
                    self._publish(snaps, wall)
                # A full batch means a backlog: commit less often (a commit is 2-3 blocking broker
                # round trips).  Caught up, commit every commit_interval_ms, and at once when a
                # window closed: its snapshot is readable (read_committed) only after the commit.
                backlog = len(messages) == self.batch_size
                interval = self.backlog_commit_interval_ms if backlog else self.commit_interval_ms
                due = (time.monotonic() - last_commit) * 1000 >= interval or (snaps and not backlog)
                if self._in_txn and due:
                    self._commit(consumer)
                    last_commit = time.monotonic()
        finally:
            if self._in_txn:
                self._commit(consumer)
            consumer.close()  # leaves the group: the other worker takes over at once
            self._producer.flush(10)
            self._consumer = self._producer = None

    def _begin(self) -> None:
        if not self._in_txn:
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_txn = True

    def _fold(self, messages: list[Message], wall: int) -> None:
        """Decode and apply a batch; bad messages on owned topics become dead letters."""
        assert self._producer is not None
        s = self.settings
        topics, owned, parts = self._topics, self._owned, self.parts
        produce = self._producer.produce
        events = self._pending_events if self.listener else None
        decoders = self._decoders
        max_bytes, newest_allowed = s.max_message_bytes, wall + s.max_future_skew_ms
        by_part: dict[int, list[Event]] = {}
        next_offsets, checked = self._next, self._checked_keys
        for msg in messages:
            if msg.error() is not None:
                self._message_error(msg)
                continue
            topic = msg.topic()
            assert topic is not None
            # Offsets are ours, not the consumer's position: a batch can carry messages fetched
            # before a rebalance; those of partitions we no longer own, or below the offset our
            # restored state starts from, were or will be processed by the state's owner.
            tp_key = (topic, msg.partition() or 0)
            offset = msg.offset() or 0
            expected = next_offsets.get(tp_key)
            if expected is None or offset < expected:
                self.stats["skipped_stale"] += 1
                continue
            next_offsets[tp_key] = offset + 1
            key = msg.key()
            if key is not None and (topic, key) not in checked:
                self._check_partition(topic, key, tp_key[1])
            spec = TOPICS[topics[topic]]
            raw = msg.value()
            try:
                # The gate's checks (schemas.codec.decode), inlined for the hot path: size, typed
                # decode with its __post_init__ rules, no future timestamps.
                if raw is None or len(raw) > max_bytes:
                    raise ValidationError("too large or no value")
                event = decoders[topic](raw)
                if event.ts > newest_allowed:  # type: ignore[attr-defined]
                    raise ValidationError("from the future")
            except (ValidationError, msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError):
                if topic in owned:
                    dead = parse_or_dead_letter(
                        spec, raw, source_topic=topic, key=msg.key(), partition=msg.partition() or 0,
                        offset=msg.offset() or 0, now_ms=wall, max_bytes=s.max_message_bytes,
                        max_future_skew_ms=s.max_future_skew_ms,
                    )
                    produce(self._dead_topic, encode(dead), topic.encode())
                    self.stats["dead_letters"] += 1
                else:
                    self.stats["skipped_invalid"] += 1
                continue
            p = msg.partition() or 0
            batch = by_part.get(p)
            if batch is None:
                batch = by_part[p] = []
            batch.append(event)
        applied = 0
        for p, batch in by_part.items():
            parts[p].apply_all(batch, wall)
            applied += len(batch)
            if events is not None:
                events += batch
        self.stats["events"] += applied

    def _check_partition(self, topic: str, key: bytes, partition: int) -> None:
        """Once per (topic, room): is the room where Kafka's default partitioner puts it?"""
        self._checked_keys.add((topic, key))
        expected = default_partition(key, self.settings.partitions)
        if expected != partition:
            self.stats["misrouted_keys"] += 1
            log.error(
                "counters_misrouted_room", topic=topic, room=key.decode(errors="replace"),
                partition=partition, expected=expected,
                fix="produce room-keyed topics with Kafka's default murmur2 partitioner "
                    "(librdkafka: partitioner=murmur2_random); otherwise a room's counters split in two",
            )

    def _message_error(self, msg: Message) -> None:
        from confluent_kafka import KafkaError, KafkaException

        error = msg.error()
        assert error is not None
        if error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)

    def _publish(self, snaps: list[RoomCounters], wall: int) -> None:
        assert self._producer is not None
        produce = self._producer.produce
        for snap in snaps:
            produce(self._counters_topic, encode(snap), snap.room_id.encode())
        self.stats["snapshots"] += len(snaps)
        if self.listener:
            self._pending_snaps += snaps

    def _commit(self, consumer: Consumer) -> None:
        """Write the changelog and the offsets into the open transaction and commit it."""
        from confluent_kafka import KafkaException, TopicPartition

        assert self._producer is not None
        producer = self._producer
        for p, part in self.parts.items():
            for key, value in part.take_changes():
                producer.produce(self._changelog, value, key, partition=p)
        positions = [TopicPartition(t, p, o) for (t, p), o in self._next.items() if o >= 0]
        started = time.monotonic()
        try:
            if positions:
                producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        except KafkaException as exc:
            error = exc.args[0]
            if error.txn_requires_abort():
                log.warning("counters_txn_aborted", worker=self.worker_id, error=str(error))
                self._abort()
                self._rewind(consumer)
                return
            raise
        self._in_txn = False
        self.stats["commits"] += 1
        took_ms = int((time.monotonic() - started) * 1000)
        self.stats["commit_ms_total"] += took_ms
        self.stats["commit_ms_max"] = max(self.stats["commit_ms_max"], took_ms)
        if self.listener and (self._pending_events or self._pending_snaps):
            self.listener(self._pending_events, self._pending_snaps)
        self._pending_events, self._pending_snaps = [], []

    def _abort(self) -> None:
        if self._in_txn and self._producer is not None:
            self._producer.abort_transaction(30)
        self._in_txn = False
        self._pending_events, self._pending_snaps = [], []

    def _rewind(self, consumer: Consumer) -> None:
        """After an aborted transaction: state back to the changelog, positions back to the offsets."""
        assignment = consumer.assignment()
        self.parts, self._next = {}, {}
        self._on_assign(consumer, assignment)
        for tp in consumer.committed(assignment, timeout=30):
            if tp.offset >= 0:
                consumer.seek(tp)


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker counters``: run until SIGTERM/SIGINT; /metrics on ``web_port``."""
    from base.metrics import export_stats, serve_metrics

    # Every event is a short-lived object: with the default thresholds the collector runs every
    # 700 allocations and now and then scans the whole (large, long-lived) state, a pause that
    # lands on the freshness tail.  Collect young objects less often.
    gc.set_threshold(50_000, 20, 100)
    worker = CountersWorker(settings, worker_id)
    export_stats("lc_counters", worker.stats, "Counters job statistics (events, snapshots, late, dead letters...)")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop_event.set())
    serve_metrics(web_port)
    log.info("counters_starting", worker=worker_id, bootstrap=settings.kafka_bootstrap)
    worker.run()
    log.info("counters_stopped", worker=worker_id, **dict(worker.stats))
    return 0
