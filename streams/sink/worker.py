"""``livecommerce worker sink``: Kafka topics into ClickHouse, batched, at-least-once, replay-proof.

A plain confluent-kafka loop (group ``<prefix>sink``, no auto commit): consume up to
``batch_size`` messages, decode each into its topic's event type and buffer it per table
(:class:`streams.sink.core.SinkBuffer`); when the buffer is due (size or age), insert every table
and only then commit the offsets the batch covered.  A crash anywhere replays the uncommitted
tail, and the ReplacingMergeTree tables collapse the repeats: exactly the produced rows under
FINAL / distinct-id queries, even across ``kill -9``.

Invalid messages are skipped and counted (``lc_sink_skipped``), not dead-lettered: the job that
owns an input topic writes its dead letters (see :mod:`streams.dead_letters`), and the sink stores
those from the ``dead-letters`` topic.

Reads ``read_committed``: the counters and flash-sale jobs write their outputs in transactions,
and an aborted transaction's records must not reach the warehouse.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from base.logs import get_logger
from base.settings import Settings
from schemas import INPUT_TOPICS, TOPICS, ValidationError, decode
from schemas.base import Event
from schemas.clickhouse import spec_for
from streams.sink.core import FlushPolicy, SinkBuffer
from streams.sink.sink import BUFFERED, SKIPPED, ClickHouseSink

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = get_logger(__name__)

#: Logical topics stored by the sink (every topic that has a raw table).
STORED_TOPICS = (
    "comments", "scored-comments", "likes", "presence", "sale-config", "orders", "payments",
    "order-results", "stock", "room-counters", "alerts", "dead-letters",
)

#: Our own jobs' outputs can be larger than the input limit (a dead letter carries up to 64 KiB of
#: original bytes, JSON-escaped); inputs keep the limit their owning job enforced.
OUTPUT_MAX_BYTES = 4 * 1024 * 1024


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def decode_for_sink(settings: Settings, topic: str, raw: bytes | None, wall_ms: int) -> Event | None:
    """The event of a message of logical ``topic``, or None if it does not decode (it is skipped)."""
    if raw is None:
        return None
    limit = settings.max_message_bytes if topic in INPUT_TOPICS else OUTPUT_MAX_BYTES
    try:
        return decode(
            TOPICS[topic].event, raw, max_bytes=limit, now_ms=wall_ms, max_future_skew_ms=settings.max_future_skew_ms
        )
    except ValidationError:
        return None


class SinkWorker:
    """One member of the sink consumer group, writing through one :class:`ClickHouseSink`."""

    def __init__(
        self,
        settings: Settings,
        sink: ClickHouseSink,
        worker_id: str = "1",
        *,
        policy: FlushPolicy | None = None,
        batch_size: int = 5000,
        topics: tuple[str, ...] = STORED_TOPICS,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.worker_id = worker_id
        self.buffer = SinkBuffer(policy or FlushPolicy())
        self.batch_size = batch_size
        self.stats: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self._topics = {settings.topic(name): name for name in topics}
        self._tables = {settings.topic(name): spec_for(TOPICS[name].event).table for name in topics}
        self._consumer: Consumer | None = None
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()

    def _consumer_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": f"{s.topic_prefix}sink",
            "client.id": f"sink-{self.worker_id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,  # to know when a replay after a crash has been read
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 1,  # librdkafka's 1000 ms default idles a fast loop most of the time
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "max.poll.interval.ms": 300_000,
            "log_level": 3,
        }

    # ---- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume, buffer, flush and commit until :attr:`stop_event` is set; then flush, commit, leave."""
        from confluent_kafka import Consumer

        self.sink.start()
        consumer = self._consumer = Consumer(self._consumer_config())
        consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        buffer = self.buffer
        try:
            while not self.stop_event.is_set():
                wait_ms = buffer.ms_until_due(now_ms())
                timeout = 0.2 if wait_ms is None else min(0.2, wait_ms / 1000)
                messages = consumer.consume(num_messages=self.batch_size, timeout=timeout)
                if messages:
                    self._buffer(messages)
                elif self.caught_up:
                    self.sink.rebuild_if_pending()  # any replay after a crash is written by now
                if buffer.due(now_ms()):
                    self._flush(consumer)
        finally:
            try:
                if not buffer.empty:
                    self._flush(consumer)
                self.sink.stop()
            finally:
                consumer.close()

    def _buffer(self, messages: list[Message]) -> None:
        from confluent_kafka import KafkaError, KafkaException

        buffer, topics, tables, settings = self.buffer, self._topics, self._tables, self.settings
        wall = time.time_ns() // 1_000_000
        mono = now_ms()
        for msg in messages:
            error = msg.error()
            topic = msg.topic()
            partition, offset = msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((topic, partition))
                    continue
                raise KafkaException(error)
            self._at_end.discard((topic, partition))
            event = decode_for_sink(settings, topics[topic], msg.value(), wall)
            if event is None:
                buffer.skip(topic, partition, offset, mono)
                SKIPPED.labels(topics[topic]).inc()
                self.stats["skipped_invalid"] += 1
                continue
            buffer.add(tables[topic], event, topic, partition, offset, mono)
        BUFFERED.set(buffer.rows)

    def _flush(self, consumer: Consumer) -> None:
        """Insert everything buffered, then commit the offsets it covered (never before)."""
        from confluent_kafka import TopicPartition

        batch = self.buffer.drain()
        started = time.monotonic()
        rows = self.sink.write_tables(batch.tables)
        if batch.offsets:
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()], asynchronous=False
            )
        BUFFERED.set(0)
        self.stats["rows"] += rows
        self.stats["batches"] += 1
        log.info(
            "sink_flushed", worker=self.worker_id, rows=rows, skipped=batch.skipped,
            tables=len(batch.tables), seconds=round(time.monotonic() - started, 3),
        )

    @property
    def caught_up(self) -> bool:
        """Every assigned partition read to its end and everything read written and committed."""
        return bool(self._assigned) and self._assigned <= self._at_end and self.buffer.empty

    # ---- rebalances --------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("sink_assigned", worker=self.worker_id, partitions=len(self._assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Write and commit what we hold before the partitions move, so the next owner replays nothing."""
        if not self.buffer.empty:
            self._flush(consumer)
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away without a chance to commit: their new owner replays the buffered tail."""
        dropped = self.buffer.discard()
        self._forget(partitions)
        log.warning("sink_partitions_lost", worker=self.worker_id, dropped_rows=dropped)


    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= gone
        self._at_end -= gone


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker sink``: run until SIGTERM/SIGINT; Prometheus /metrics on ``web_port``.

    ``web_port`` (each worker's own, from ``--web-port``, default ``LC_WORKER_WEB_PORT``) so that
    the sink and the other jobs of one host never compete for one port.
    """
    from base.metrics import serve_metrics
    from warehouse.client import database_of, get_client, preload_chdb
    from warehouse.pseudonym import Pseudonymiser

    dsn = settings.effective_clickhouse_dsn
    if dsn.startswith("chdb:"):
        preload_chdb()  # before any thread starts: importing chdb moves the working directory
    sink = ClickHouseSink(
        get_client(dsn), database_of(dsn), sink_id=f"sink-{worker_id}",
        pseudonymiser=Pseudonymiser(settings.pseudonym_secret),
    )
    policy = FlushPolicy(
        max_rows=settings.sink_max_rows, max_table_rows=min(FlushPolicy.max_table_rows, settings.sink_max_rows),
        max_age_ms=settings.sink_max_age_ms,
    )
    worker = SinkWorker(settings, sink, worker_id, policy=policy)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop_event.set())
    serve_metrics(web_port)
    log.info("sink_starting", worker=worker_id, bootstrap=settings.kafka_bootstrap, dsn=dsn.split("@")[-1])
    worker.run()
    log.info("sink_stopped", worker=worker_id, **dict(worker.stats))
    return 0
