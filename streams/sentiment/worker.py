"""The sentiment job's I/O shell: comments in; scored comments and tiered alerts out.

Why a confluent-kafka loop rather than a Faust agent: the model, not Kafka, sets the pace here
(a few thousand comments a second on 2 cores), and it wants whole batches.  The loop feeds valid
comments to a :class:`~sentiment.batching.MicroBatcher` (released at ``batch_size`` comments or
after ``max_wait_ms``), scores each released batch with the cached ONNX scorer, lets the pure
:mod:`streams.sentiment.core` build the records, produces them keyed by ``room_id``, and only then
commits the offsets of the comments in that batch.  The counters job uses the same kind of loop
for the same measured reason (stock Faust spends ~80 µs of per-message task overhead).

Guarantee: at least once.  Scoring is a pure function of the text, so a comment re-read after a
crash gets the same ScoredComment (same event_id) and the same alert ids; the rolling mood
restarts empty and refills within one window.  Invalid comments are skipped and counted: the
counters job owns dead-lettering the ``comments`` topic.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram

from livecommerce.logs import get_logger
from livecommerce.settings import Settings
from schemas import TOPICS, ValidationError, decode, encode
from schemas.events import Comment
from sentiment.batching import MicroBatcher
from sentiment.mood import MoodPolicy, MoodTracker
from streams.sentiment.core import process_batch

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer, TopicPartition

    from sentiment.scorer import SentimentScorer

log = get_logger(__name__)

SCORED = PromCounter("lc_sentiment_scored_total", "Comments scored", ["label"])
SKIPPED = PromCounter("lc_sentiment_skipped_invalid_total", "Invalid comments skipped (dead-lettered by counters)")
ALERTS = PromCounter("lc_sentiment_alerts_total", "Negative-opinion alerts raised", ["level"])
BATCH_SECONDS = Histogram(
    "lc_sentiment_batch_seconds", "Time to score one micro-batch",
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
CACHE_HIT_RATE = Gauge("lc_sentiment_cache_hit_rate", "Share of comments answered by the LRU cache")

# (topic, partition, offset) of a comment inside a pending batch.
Coords = tuple[str, int, int]


def now_ms() -> float:
    return time.monotonic() * 1000


class SentimentWorker:
    """One member of the ``sentiment`` consumer group."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str = "1",
        *,
        scorer: SentimentScorer | None = None,
        batch_size: int = 64,
        max_wait_ms: float = 50,
        policy: MoodPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self._scorer = scorer
        self.batcher: MicroBatcher[tuple[Comment, Coords]] = MicroBatcher(batch_size, max_wait_ms)
        self.mood = MoodTracker(policy)
        self.stats: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self._comments_topic = settings.topic("comments")
        self._scored_topic = settings.topic("scored-comments")
        self._alerts_topic = settings.topic("alerts")
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    @property
    def scorer(self) -> SentimentScorer:
        if self._scorer is None:
            from sentiment.scorer import load_scorer

            self._scorer = load_scorer("onnx")
        return self._scorer

    def _open(self) -> None:
        from confluent_kafka import Consumer, Producer

        s = self.settings
        self._producer = Producer({
            "bootstrap.servers": s.kafka_bootstrap,
            "client.id": f"sentiment-{self.worker_id}",
            "partitioner": "murmur2_random",  # same partition for a room as the other producers
            "enable.idempotence": True,
            "linger.ms": 5,
            "log_level": 3,
        })
        self._consumer = Consumer({
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": f"{s.topic_prefix}sentiment",
            "client.id": f"sentiment-{self.worker_id}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 1,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "log_level": 3,
        })
        self._consumer.subscribe([self._comments_topic], on_revoke=self._on_revoke)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the pending batch while its offsets can still be committed by this member."""
        batch = self.batcher.flush()
        if batch:
            self._handle(batch)

    def run(self) -> None:
        """Process until :attr:`stop_event` is set; score what is pending, commit, leave the group."""
        _ = self.scorer  # load the model before joining the group, not inside the first poll
        self._open()
        assert self._consumer is not None and self._producer is not None
        consumer = self._consumer
        try:
            while not self.stop_event.is_set():
                due = self.batcher.due_in_ms(now_ms())
                timeout = 0.05 if due is None else min(0.05, due / 1000)
                messages = consumer.consume(num_messages=self.batcher.max_size, timeout=timeout)
                for msg in messages:
                    batch = self._accept(msg)
                    if batch:
                        self._handle(batch)
                batch = self.batcher.poll(now_ms())
                if batch:
                    self._handle(batch)
        finally:
            batch = self.batcher.flush()
            if batch:
                self._handle(batch)
            consumer.close()
            self._producer.flush(10)

    def _accept(self, msg: Message) -> list[tuple[Comment, Coords]]:
        """Decode one message into the batcher; return a batch if that filled it."""
        error = msg.error()
        if error is not None:
            from confluent_kafka import KafkaError, KafkaException

            if error.code() == KafkaError._PARTITION_EOF:
                return []
            raise KafkaException(error)
        raw = msg.value()
        try:
            if raw is None:
                raise ValidationError("message has no value (tombstone)")
            comment = decode(
                TOPICS["comments"].event, raw, max_bytes=self.settings.max_message_bytes,
                max_future_skew_ms=self.settings.max_future_skew_ms,
            )
        except ValidationError:
            self.stats["skipped_invalid"] += 1
            SKIPPED.inc()
            return []
        assert isinstance(comment, Comment)
        coords = (msg.topic() or self._comments_topic, msg.partition() or 0, msg.offset() or 0)
        return self.batcher.add((comment, coords), now_ms())

    def _handle(self, batch: list[tuple[Comment, Coords]]) -> None:
        """Score, produce, wait for the broker's acks, then commit the batch's offsets."""
        from confluent_kafka import TopicPartition as TP

        assert self._producer is not None and self._consumer is not None
        comments = [c for c, _ in batch]
        started = time.perf_counter()
        sentiments = self.scorer.score([c.text for c in comments])
        BATCH_SECONDS.observe(time.perf_counter() - started)
        records, alerts = process_batch(comments, sentiments, self.mood)
        produce = self._producer.produce
        for rec in records:
            produce(self._scored_topic, encode(rec), rec.room_id.encode())
            SCORED.labels(rec.label).inc()
        for alert in alerts:
            produce(self._alerts_topic, encode(alert), alert.room_id.encode())
            ALERTS.labels(alert.level).inc()
            log.warning("sentiment_alert", room=alert.room_id, level=alert.level, share=alert.value)
        remaining = self._producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} scored records not acknowledged by the broker")
        last: dict[tuple[str, int], int] = {}
        for _, (topic, partition, offset) in batch:
            last[(topic, partition)] = max(offset, last.get((topic, partition), -1))
        self._consumer.commit(
            offsets=[TP(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
        )
        self.stats["scored"] += len(records)
        self.stats["alerts"] += len(alerts)
        self.stats["batches"] += 1
        CACHE_HIT_RATE.set(self.scorer.cache.hit_rate)


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker sentiment``: run until SIGTERM/SIGINT; /metrics on ``web_port``."""
    from livecommerce.metrics import serve_metrics

    worker = SentimentWorker(settings, worker_id)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop_event.set())
    serve_metrics(web_port)
    log.info("sentiment_starting", worker=worker_id, bootstrap=settings.kafka_bootstrap)
    worker.run()
    log.info("sentiment_stopped", worker=worker_id, **dict(worker.stats))
    return 0
