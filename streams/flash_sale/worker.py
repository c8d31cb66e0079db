"""The flash-sale job's I/O shell: orders, payments and sale config in; answers out, exactly once.

Why a confluent-kafka transactional loop and not a Faust agent: on this 2-core machine stock Faust
creates two asyncio tasks per message and caps near 12k events/s whatever the agent does (see
DESIGN.md), while one hot SKU must get >= 20k decisions/s.  This loop decides a whole poll batch
in the pure :class:`~streams.flash_sale.inventory.Inventory` and commits per batch.

The guarantee is the one ``processing_guarantee="exactly_once"`` gives Faust, built the same way
Kafka Streams' EOS does it:

- one *task* per input partition *p* (partition *p* of orders, payments and sale-config: all
  keyed by sku_id with the murmur2 partitioner, handed to one worker by the range assignor), so
  one owner decides each SKU serially (partitioning is the lock);
- each task has its own transactional producer, ``transactional.id = <prefix>flash-sale.p<p>``.
  A new owner's ``init_transactions`` fences the previous owner (a zombie, or a process killed
  with ``kill -9``) and aborts the transaction it left open, *before* the state is read;
- per batch, ONE transaction holds the order results, stock updates, alerts, dead letters, the
  changelog records of every touched state key, the input positions (``o|`` record) and the
  consumer-group offsets (``send_offsets_to_transaction``).  Either all of it is visible to
  ``read_committed`` readers or none of it is;
- a new owner restores the state from the changelog (``read_committed``, up to the last stable
  offset) and seeks the inputs to the positions recorded with it.  A batch whose transaction did
  not commit is decided again from the same state, giving the same answers (the core is
  deterministic over event time), and no answer is ever visible twice.

Expiry: deadlines live in the state (changelog); :meth:`Inventory.tick` runs on the wall clock
every ``TICK_S`` and on every event (event time), so holds expire after restarts too.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from base.logs import get_logger
from base.settings import Settings
from schemas import TOPICS, DeadLetter, SaleConfig, encode
from streams.dead_letters import parse_or_dead_letter
from streams.flash_sale.changelog import (
    POSITIONS_KEY,
    changelog_topic,
    encode_positions,
    ensure_changelog,
    positions_of,
    read_partition,
)
from streams.flash_sale.inventory import Inventory
from streams.flash_sale.risk import RiskConfig
from streams.partitioning import default_partition

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer, TopicPartition

log = get_logger(__name__)

#: Input topics, all keyed by sku_id; this job alone dead-letters their invalid messages.
INPUTS = ("orders", "payments", "sale-config")
BATCH_SIZE = 10_000
POLL_TIMEOUT_S = 0.005
TICK_S = 0.25


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def load_blocklist(settings: Settings) -> frozenset[str]:
    """User ids in ``<data_dir>/flash_sale_blocklist.txt`` (one a line, ``#`` comments), if present."""
    path = Path(settings.data_dir) / "flash_sale_blocklist.txt"
    if not path.exists():
        return frozenset()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line)


@dataclass
class Task:
    """One input partition: its producer, its inventory and where its inputs continue."""

    partition: int
    producer: Producer
    inventory: Inventory
    positions: dict[str, int] = field(default_factory=dict)


class FlashSaleWorker:
    """One process's share of the flash-sale job (one member of its consumer group)."""

    def __init__(self, settings: Settings, worker_id: str, risk: RiskConfig | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.risk = risk or RiskConfig(blocklist=load_blocklist(settings))
        self.stop = threading.Event()
        self.tasks: dict[int, Task] = {}
        self.topics = {settings.topic(name): TOPICS[name] for name in INPUTS}
        self.changelog = changelog_topic(settings)
        self.decisions = 0
        self._restore_consumer: Consumer | None = None
        self.partition_count = settings.partitions  # the inputs' real count, read from the cluster in run()
        self._home: dict[str, int] = {}  # sku_id -> the partition Kafka's default partitioner gives it

    # ------------------------------------------------------------------ clients

    def _consumer_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": s.topic("flash-sale"),
            # Static membership: a restarted worker takes its partitions back at once, no rebalance.
            "group.instance.id": s.topic(f"flash-sale-{self.worker_id}"),
            "client.id": f"flash-sale-{self.worker_id}",
            "partition.assignment.strategy": "range",  # partition p of every input to one member
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10_000,
            "max.poll.interval.ms": 120_000,
            "fetch.queue.backoff.ms": 1,
            "fetch.wait.max.ms": 20,
            "log_level": 3,
        }

    def _producer(self, partition: int) -> Producer:
        from confluent_kafka import Producer

        producer = Producer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "transactional.id": self.settings.topic(f"flash-sale.p{partition}"),
            "transaction.timeout.ms": 30_000,
            "partitioner": "murmur2_random",  # the Java/aiokafka default, as every producer here uses
            "linger.ms": 2,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": "none",  # CPU is the scarce resource here, not the network
            "log_level": 3,
        })
        producer.init_transactions(60)
        return producer

    def _restorer(self) -> Consumer:
        from confluent_kafka import Consumer

        if self._restore_consumer is None:
            self._restore_consumer = Consumer({
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"flash-sale-restore-{uuid.uuid4().hex}",  # assign() only, never commits
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "fetch.queue.backoff.ms": 1,
                "log_level": 3,
            })
        return self._restore_consumer

    # ------------------------------------------------------------------ partition ownership

    def _open_task(self, partition: int) -> Task:
        """Fence the previous owner, then rebuild the partition's state from the changelog."""
        started = time.monotonic()
        producer = self._producer(partition)
        records = read_partition(self._restorer(), self.changelog, partition)
        task = Task(partition, producer, Inventory.restore(records, self.risk), positions_of(records))
        count = len(records)
        del records
        gc.collect()
        gc.freeze()  # the restored state is long-lived: keep it out of every later collection
        log.info("flash_sale_partition_restored", partition=partition, records=count,
                 skus=len(task.inventory.skus), positions=task.positions,
                 seconds=round(time.monotonic() - started, 3))
        return task

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for p in sorted({tp.partition for tp in partitions} - self.tasks.keys()):
            self.tasks[p] = self._open_task(p)
        for tp in partitions:
            position = self.tasks[tp.partition].positions.get(tp.topic)
            if position is not None:
                tp.offset = position
        consumer.assign(partitions)
        log.info("flash_sale_assigned", worker=self.worker_id, partitions=sorted(self.tasks))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Between batches no transaction is open, so dropping the tasks loses nothing."""
        for p in {tp.partition for tp in partitions}:
            task = self.tasks.pop(p, None)
            if task is not None:
                task.producer.flush(10)
        consumer.unassign()
        log.info("flash_sale_revoked", worker=self.worker_id, partitions=sorted({tp.partition for tp in partitions}))

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        from confluent_kafka import Consumer

        partitions = self.settings.partitions
        ensure_changelog(self.settings, partitions)
        consumer = Consumer(self._consumer_config())
        self.partition_count = self._input_partition_count(consumer)
        consumer.subscribe(list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)
        log.info("flash_sale_started", worker=self.worker_id, topics=list(self.topics))
        last_tick = time.monotonic()
        try:
            while not self.stop.is_set():
                messages = consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT_S)
                by_partition: dict[int, list[Message]] = {}
                for msg in messages:
                    if msg.error() is not None:
                        log.warning("flash_sale_consume_error", error=str(msg.error()))
                        continue
                    by_partition.setdefault(cast(int, msg.partition()), []).append(msg)
                tick = time.monotonic() - last_tick >= TICK_S
                if tick:
                    last_tick = time.monotonic()
                for p, task in list(self.tasks.items()):
                    batch = by_partition.get(p, [])
                    if batch or (tick and task.inventory.has_due(now_ms())):
                        self._process(consumer, task, batch)
        finally:
            consumer.close()
            for task in self.tasks.values():
                task.producer.flush(10)
            if self._restore_consumer is not None:
                self._restore_consumer.close()

    def _input_partition_count(self, consumer: Consumer) -> int:
        """The partition count shared by the three inputs; refuse to run if they differ.

        Co-partitioning by sku_id is what makes one task the single writer of a SKU: with different
        counts a SKU's orders and its sale config would land in different tasks."""
        metadata = consumer.list_topics(timeout=30)
        counts = {t: len(metadata.topics[t].partitions) for t in self.topics if t in metadata.topics}
        if len(counts) != len(self.topics) or len(set(counts.values())) != 1:
            raise RuntimeError(
                f"the flash-sale inputs must exist with one partition count (co-partitioned by sku_id): {counts}; "
                "create them with `livecommerce topics`"
            )
        return next(iter(counts.values()))

    def _misrouted(self, sku_id: str, partition: int) -> int | None:
        """The partition ``sku_id`` belongs to when that is not ``partition`` (else None).

        A message its producer put elsewhere (another partitioner, or keyed by something else) would
        give its SKU a second owner -- two stocks, two answers for one order_id -- so it is refused."""
        home = self._home.get(sku_id)
        if home is None:
            home = self._home[sku_id] = default_partition(sku_id.encode(), self.partition_count)
        return None if home == partition else home

    def _process(self, consumer: Consumer, task: Task, batch: list[Message]) -> None:
        """Decide one batch of one partition and commit everything it caused in one transaction."""
        from confluent_kafka import KafkaException

        try:
            self._transaction(consumer, task, batch)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise  # fenced by a newer owner, or worse: stop this process, the supervisor restarts it
            log.warning("flash_sale_transaction_aborted", partition=task.partition, error=str(error))
            task.producer.abort_transaction(30)
            self._rewind(consumer, task)

    def _transaction(self, consumer: Consumer, task: Task, batch: list[Message]) -> None:
        from confluent_kafka import TopicPartition

        producer, inventory, p = task.producer, task.inventory, task.partition
        producer.begin_transaction()
        wall = now_ms()
        dead: list[DeadLetter] = []
        raw_of: dict[int, Message] = {}
        s = self.settings
        for msg in batch:
            topic, offset = cast(str, msg.topic()), cast(int, msg.offset())  # set on every fetched message
            if offset < task.positions.get(topic, -1):
                continue  # fetched before a rebalance handed this partition back to us: already applied
            event = parse_or_dead_letter(
                self.topics[topic], msg.value(), source_topic=topic, key=msg.key(), partition=p,
                offset=offset, now_ms=wall, max_bytes=s.max_message_bytes,
                max_future_skew_ms=s.max_future_skew_ms,
            )
            task.positions[topic] = offset + 1
            if isinstance(event, DeadLetter):
                dead.append(event)
                continue
            sku_id: str = event.sku_id  # type: ignore[attr-defined]  # orders, payments and configs all have one
            home = self._misrouted(sku_id, p)
            if home is not None:
                dead.append(DeadLetter(
                    source_topic=topic, partition=p, offset=offset, key=msg.key(), payload=msg.value() or b"",
                    reason=f"sku_id {sku_id!r} belongs to partition {home}, not {p}: produce keyed by sku_id "
                           "with Kafka's default murmur2 partitioner (librdkafka: partitioner=murmur2_random)",
                    error="Misrouted", ts=wall,
                ))
                continue
            if type(event) is SaleConfig:  # a config error keeps its event alive: its id() maps to its message
                raw_of[id(event)] = msg
            inventory.handle(event)  # type: ignore[arg-type]  # the three input types only
        inventory.tick(wall)
        out, stock = inventory.take_outputs()
        for cfg, reason in out.config_errors:
            msg = raw_of[id(cfg)]
            dead.append(DeadLetter(source_topic=cast(str, msg.topic()), partition=p, offset=cast(int, msg.offset()),
                                   key=msg.key(), payload=msg.value() or b"", reason=reason[:2000],
                                   error="SaleConfigRejected", ts=wall))
        self._send(producer, "order-results", out.results)
        self._send(producer, "stock", stock)
        self._send(producer, "alerts", out.alerts)
        self._send(producer, "dead-letters", dead)
        for key, value in inventory.changed_records():
            producer.produce(self.changelog, value, key, partition=p)
        if batch:
            producer.produce(self.changelog, encode_positions(task.positions), POSITIONS_KEY, partition=p)
            offsets = [TopicPartition(t, p, o) for t, o in task.positions.items()]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        self.decisions += len(out.results)
        _count_results(out.results, len(dead))

    def _send(self, producer: Producer, topic_name: str, events: list[Any]) -> None:
        spec = TOPICS[topic_name]
        topic = self.settings.topic(topic_name)
        key_of = spec.key_of
        for event in events:
            while True:
                try:
                    producer.produce(topic, encode(event), key_of(event))
                    break
                except BufferError:
                    producer.poll(0.05)

    def _rewind(self, consumer: Consumer, task: Task) -> None:
        """After an aborted transaction: rebuild the task from the changelog and re-read its inputs."""
        from confluent_kafka import TopicPartition

        task.producer.flush(10)
        fresh = self._open_task(task.partition)
        self.tasks[task.partition] = fresh
        for topic in self.topics:
            position = fresh.positions.get(topic)
            if position is not None:
                consumer.seek(TopicPartition(topic, task.partition, position))


def _count_results(results: list[Any], dead: int) -> None:
    """Prometheus counters, once per committed batch (not per event: the hot path stays lean)."""
    from prometheus_client import Counter as Metric

    global _results_metric, _dead_metric
    if _results_metric is None:
        _results_metric = Metric("lc_flash_sale_results", "Order results committed, by status", ["status"])
        _dead_metric = Metric("lc_flash_sale_dead_letters", "Invalid orders/payments/configs dead-lettered")
    for status, n in Counter(r.status for r in results).items():
        _results_metric.labels(status).inc(n)
    if dead and _dead_metric is not None:
        _dead_metric.inc(dead)


_results_metric: Any = None
_dead_metric: Any = None


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """Run until SIGTERM/SIGINT. ``web_port`` serves Prometheus metrics on 127.0.0.1 (0 disables)."""
    from base.metrics import serve_metrics

    try:
        serve_metrics(web_port)
    except OSError as exc:  # a busy port must not stop the sale
        log.warning("flash_sale_metrics_unavailable", port=web_port, error=str(exc))
    # Each decision allocates a few small objects; the default gen-0 threshold (700) made the cyclic
    # GC scan them over and over: 200,000 measured ~40% more decisions per CPU second.
    gc.set_threshold(200_000, 20, 100)
    worker = FlashSaleWorker(settings, worker_id)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop.set())
    worker.run()
    return 0
