"""The sentiment job's I/O shell: a Faust agent; comments in, scored comments and tiered alerts out.

Why Faust here when counters and flash-sale are confluent-kafka loops: the model, not Kafka, sets
the pace of this job (a few thousand comments a second on 2 cores, see ``bench/sentiment.py``),
and Faust gives the job the project's Faust app, web server and Faust's consumer-group, commit
and shutdown handling.  It is not free: on 2 cores every CPU microsecond the event loop spends
per comment comes out of the model's time, so the per-message costs that showed in the profile
were removed (below).

Shape: one agent (``concurrency=1``, one mood tracker per worker) consumes ``comments`` as raw
bytes and batches them with ``stream.noack_take(batch_size, within=max_wait)`` (up to
:data:`BATCH_SIZE` comments or 50 ms), as a three-stage pipeline:

1. the agent decodes each batch with :func:`schemas.decode` and hands its texts to one scoring
   thread (one executor hop per batch), which normalises them, looks up the cache and queues the
   misses' model runs (64 comments each) on the model threads with
   :meth:`~sentiment.scorer.SentimentScorer.submit`, behind the runs of the batches before it:
   one single-threaded run per core side by side, going on from one batch to the next without
   waiting at a batch's end (onnxruntime releases the GIL, so Faust keeps fetching);
2. a finisher task takes the batches in order as soon as each is scored, lets the pure
   :func:`streams.sentiment.core.process_batch` build the records and hands every ScoredComment
   (to ``scored-comments``) and Alert (to ``alerts``), keyed by ``room_id``, to a librdkafka
   producer from :func:`base.kafka.make_producer` (idempotent, ``acks=all``, murmur2 like every
   producer here); a delivery thread serves its delivery reports and counts them per batch
   (:class:`streams.sentiment.core.BatchDeliveries`), waking the event loop once per batch;
3. a task per batch waits for that wake-up and only then acks the batch's messages.

Up to :data:`SCORE_AHEAD` batches wait behind the one being finished, so the model threads always
have the next batch's runs queued; at most :data:`IN_FLIGHT` batches wait for acks.  The Faust
app (:class:`streams.app.App`) hands fetched messages to the stream without Faust's per-message
tasks (:mod:`streams.faust_consumer`), fetches at most 500 records a round and has no Monitor
sensor.

Where the time went (py-spy 250 Hz on the worker working off 20,000 distinct comments, 2-layer
model, the 2-core machine shared with another session's Kafka cluster tests at load 4-9; details
in ``docs/sentiment.md``).  Before: the two model threads idled 14-20 % of the working time, at
the end of each batch (one finished its last run while the other ran its own, then both waited
for the next batch to be prepared), and the event loop spent, of its busy time, ~45 % in Faust's
per-message consumer path (``wait_first`` with four tasks per message, the conductor, the take
buffer), ~27 % producing through aiokafka (building the records, ``send`` per record, the sender
task), ~5 % decoding, ~3 % acking.  Now: the model threads idle 1-3 %; the event loop's busy
samples per 20,000 comments fell from ~2,300 to ~700 (producing ~25 %, Faust's consumer path
~23 %, the stream and take buffer ~19 %, decoding ~13 %, acking ~4 % of what is left); the worker's
CPU per 1,000 comments fell by ~15 % measured back to back with the old code (0.89-0.95 s against
1.02-1.15 s, start-up included).

Guarantee: at least once. A message is acked only after every record produced from its batch was
acknowledged by the broker (``acks=all``, its delivery report said so); Faust commits the
contiguous acked offsets every ``broker_commit_interval`` (0.5 s, see :mod:`streams.app`).  The
records do not go through Faust's producer, so Faust's flush before a commit does not cover them:
it need not, since no message is acked before its records were acknowledged.  A worker
killed with ``kill -9`` therefore re-reads at most the comments of the batches in flight plus about
half a second, and produces their records again: the same ``event_id``, room, user, text, ts,
label and score (the int8 graph is statically quantised, so a comment's score does not depend on
its batch neighbours).  Consumers dedupe on ``event_id``: the raw ClickHouse table
``scored_comments`` is a ReplacingMergeTree on (room_id, ts, event_id), and the per-minute rollup
keeps sets of comment ids, not sums, so a replayed comment counts once there too
(``warehouse/migrations/0004_rollup_scored_once.sql``); alert ids are deterministic too, but the
rolling mood restarts empty and refills within one window, so a replayed rise can alert again or
not at all.  A graceful stop (SIGTERM) finishes every batch taken (scored, produced, acked) and
commits what was processed.

Why not ``processing_guarantee="exactly_once"``: tried on faust-streaming 0.15.3 + aiokafka 0.14,
it ran without errors at about the same speed, but the SIGKILL-and-restart test still found ~790
of the ~2,400 comments scored before the kill scored twice and visible to ``read_committed``
readers, so as wired here it cost transactions without giving the guarantee (why was not
investigated further).  It is not needed either: scoring is a pure function of the text, and a
dedupe on ``event_id`` gives what transactions would.

Failure: a batch whose records could not be produced or acknowledged must never be acked; the
agent ends the process (``os._exit``) on any error in a batch or on the first failed delivery
report of a batch (librdkafka retries until ``message.timeout.ms``), before Faust can commit
anything later; the supervisor restarts it and the batch is read again.  SIGTERM/SIGINT stop cleanly in about a
second: Faust stops fetching, finishes the batch in hand, commits what was acked (comments fetched
but not yet batched are dropped and read again by the next owner) and leaves the group.

Invalid comments are skipped and counted (``lc_sentiment_skipped_invalid_total``): the counters
job owns dead-lettering the ``comments`` topic (:mod:`streams.dead_letters`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

import faust
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram

from base.kafka import make_producer
from base.logs import get_logger
from base.settings import Settings
from schemas import ValidationError, decode, encode
from schemas.events import Comment
from sentiment.mood import MoodPolicy, MoodTracker
from streams.app import create_app, declare_topics
from streams.sentiment.core import BatchDeliveries, process_batch

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message, Producer
    from faust.types import EventT, StreamT, TopicT

    from sentiment.labels import Sentiment
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

#: Comments per agent batch and the longest a comment waits for its batch to fill: one broker
#: round trip per batch, and a quiet room must not wait for a full batch.  The scorer runs the
#: model on at most 64 of them at a time, one run per core side by side; at the end of each batch
#: one model thread idles while the other finishes its last chunk (profiled: ~14 % of their time
#: with 256, 4 chunks a batch), so under a backlog a batch holds 8 chunks.  In live traffic the
#: 50 ms wait releases batches long before they fill.
BATCH_SIZE = 512
MAX_WAIT_MS = 50.0

#: Single-threaded model runs side by side: one per core (see :attr:`SentimentAgent.scorer`).
MODEL_WORKERS = os.cpu_count() or 2

#: Batches whose records may wait for the broker's acks while the next one is scored.
IN_FLIGHT = 2

#: Batches taken (and queued on the scoring thread) behind the one being finished, so the scoring
#: thread finds its next batch waiting instead of idling while the event loop builds, produces and
#: acks the previous one (profiled: ~10 % of its time idle without this lookahead).
SCORE_AHEAD = 2

#: Exit status when a batch failed (see the module docstring: exiting before Faust commits).
EXIT_BATCH_FAILED = 70

#: Seconds between progress log lines while comments flow.
PROGRESS_EVERY_S = 30.0


#: A batch taken from the stream: its events, its valid comments and the future of their scores.
_Taken = tuple[
    "Sequence[EventT[bytes]]", "list[Comment]", "asyncio.Future[concurrent.futures.Future[list[Sentiment]]] | None",
]


class SentimentAgent:
    """The sentiment job's state and batch handler; :meth:`attach` makes it an agent of an app."""

    def __init__(
        self,
        settings: Settings,
        *,
        scorer: SentimentScorer | None = None,
        batch_size: int = BATCH_SIZE,
        max_wait_ms: float = MAX_WAIT_MS,
        policy: MoodPolicy | None = None,
    ) -> None:
        if batch_size < 1 or max_wait_ms <= 0:
            raise ValueError("batch_size must be >= 1 and max_wait_ms > 0")
        self.settings = settings
        self._scorer = scorer
        self.batch_size = batch_size
        self.max_wait_ms = max_wait_ms
        self.mood = MoodTracker(policy)
        self.stats: Counter[str] = Counter()
        self.timing: dict[str, float] = defaultdict(float)
        self._topics: dict[str, TopicT] = {}
        self._app: faust.App
        #: One scoring thread: the scorer's cache is touched by it alone, and batches are scored in
        #: the order they were taken.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment-score")
        #: The outputs' producer (librdkafka, see :meth:`attach`) and the thread serving its
        #: delivery reports.
        self._producer: Producer | None = None
        self._deliveries: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def scorer(self) -> SentimentScorer:
        """The cached ONNX scorer, loaded on first use (call it before the worker joins the group)."""
        if self._scorer is None:
            from sentiment.scorer import load_scorer

            # The model gets every core: one single-threaded run per core side by side (the
            # scorer's ``workers``), not one run on every core.  With one core fewer (the earlier
            # choice, to leave the event loop a core) the agent was capped at the 1-thread model
            # rate; one run on 2 intra-op threads costs ~30 % more CPU per comment than two
            # single-threaded runs and lost to 1 thread on the busy shared machine.  The event loop
            # needs ~0.2 of a core (profiled) and runs in the gaps the model threads leave.
            self._scorer = load_scorer("onnx", threads=1, workers=MODEL_WORKERS)
        return self._scorer

    def attach(self, app: faust.App) -> None:
        """Register the agent on ``comments`` and a progress timer with ``app``."""
        self._app = app
        self._topics = declare_topics(app, self.settings)
        app.agent(self._topics["comments"], name="sentiment", concurrency=1)(self.process)
        app.timer(PROGRESS_EVERY_S)(self._log_progress)
        self._producer = make_producer(self.settings, {"client.id": f"{app.conf.broker_client_id}-out"})
        self._deliveries = threading.Thread(target=self._serve_deliveries, name="sentiment-deliveries", daemon=True)
        self._deliveries.start()

    def _serve_deliveries(self) -> None:
        """On the deliveries thread: run the producer's delivery callbacks as the broker answers
        (``poll`` sleeps without the GIL until an answer or the timeout)."""
        assert self._producer is not None
        poll = self._producer.poll
        while not self._stopping.is_set():
            poll(0.1)

    async def process(self, stream: StreamT[bytes]) -> None:
        """The agent, a three-stage pipeline: take a batch without acking it and decode it; score it on
        the scoring thread while the previous batch's records are built and handed to the producer;
        ack its messages only once the broker acknowledged every record (a task per batch).

        At most :data:`SCORE_AHEAD` batches wait for or sit on the scoring thread, so the thread
        always has the next batch when it finishes one (no idle hop back to the event loop), and at
        most :data:`IN_FLIGHT` batches wait for acks.  Batches are finished in the order they were
        taken (the mood tracker sees comments in offset order).  A stop finishes what was taken and
        waits for its acks, so a graceful stop commits everything it produced."""
        scoring: asyncio.Queue[_Taken | None] = asyncio.Queue(maxsize=SCORE_AHEAD)
        finisher = asyncio.ensure_future(self._finisher(stream, scoring))
        loop = asyncio.get_running_loop()
        try:
            # noack_take is faust-streaming's; its StreamT protocol does not declare it.
            takes = stream.noack_take(self.batch_size, within=self.max_wait_ms / 1000)  # type: ignore[attr-defined]
            async for events in takes:
                comments = self.decode([e.value for e in events])
                texts = [c.text for c in comments]
                future = loop.run_in_executor(self._executor, self._submit, texts) if texts else None
                await scoring.put((events, comments, future))  # waits while SCORE_AHEAD batches are queued
        finally:
            await asyncio.shield(self._drain(scoring, finisher))

    @staticmethod
    async def _drain(scoring: asyncio.Queue[_Taken | None], finisher: asyncio.Future[None]) -> None:
        """On stop: the finisher finishes every batch taken, then waits for their acks."""
        await scoring.put(None)
        await finisher

    async def _finisher(self, stream: StreamT[bytes], scoring: asyncio.Queue[_Taken | None]) -> None:
        """Finishes the taken batches in order, as soon as each is scored (also when no new comment
        arrives), until the ``None`` that :meth:`_drain` puts; then waits for the acks in flight."""
        pending: deque[asyncio.Task[None]] = deque()
        while (taken := await scoring.get()) is not None:
            await self._finish(stream, *taken, pending)
        if pending:
            await asyncio.gather(*pending)

    async def _finish(
        self, stream: StreamT[bytes], events: Sequence[EventT[bytes]], comments: list[Comment],
        future: asyncio.Future[concurrent.futures.Future[list[Sentiment]]] | None,
        pending: deque[asyncio.Task[None]],
    ) -> None:
        """Wait for a batch's scores, hand its records to the producer and start the task that acks
        its messages once they are acknowledged; then wait while too many batches await acks."""
        try:
            started = time.perf_counter()
            sentiments = await asyncio.wrap_future(await future) if future is not None else []
            self.timing["score_wait_s"] += time.perf_counter() - started
            delivered = self.publish(comments, sentiments)
        except Exception as exc:  # any failure must end the process before Faust commits
            self._exit_uncommitted(exc)
        pending.append(asyncio.ensure_future(self._ack_when_acknowledged(stream, events, delivered)))
        while pending and (pending[0].done() or len(pending) > IN_FLIGHT):
            await pending.popleft()

    async def _ack_when_acknowledged(
        self, stream: StreamT[bytes], events: Sequence[EventT[bytes]], delivered: asyncio.Future[object] | None,
    ) -> None:
        started = time.perf_counter()
        if delivered is not None:
            error = await delivered
            if error is not None:  # a record of the batch was not acknowledged
                self._exit_uncommitted(RuntimeError(f"a record was not acknowledged: {error}"))
        self.timing["ack_wait_s"] += time.perf_counter() - started
        for event in events:
            await stream.ack(event)

    def decode(self, batch: Sequence[bytes | None]) -> list[Comment]:
        """The batch's valid comments, in order; invalid ones are counted and skipped."""
        started = time.perf_counter()
        comments: list[Comment] = []
        for raw in batch:
            try:
                if raw is None:
                    raise ValidationError("message has no value (tombstone)")
                comments.append(decode(
                    Comment, raw, max_bytes=self.settings.max_message_bytes,
                    max_future_skew_ms=self.settings.max_future_skew_ms,
                ))
            except ValidationError as exc:
                self.stats["skipped_invalid"] += 1
                SKIPPED.inc()
                log.debug("sentiment_skipped_invalid", reason=exc.reason)
        self.timing["decode_s"] += time.perf_counter() - started
        return comments

    def _submit(self, texts: list[str]) -> concurrent.futures.Future[list[Sentiment]]:
        """On the scoring thread (the only thread that submits to the scorer): normalise and look up
        the batch, queue its misses' model runs behind the earlier batches' (no wait: the model
        threads go on from one batch to the next) and return the future of its sentiments."""
        started = time.perf_counter()
        future = self.scorer.submit(texts)
        future.add_done_callback(lambda _: BATCH_SECONDS.observe(time.perf_counter() - started))
        return future

    def publish(self, comments: Sequence[Comment], sentiments: Sequence[Sentiment]) -> asyncio.Future[object] | None:
        """Build a scored batch's records and hand each to the producer; return the future that
        settles once the broker answered for all of them (``None`` if all were acknowledged, else
        the first error), or ``None`` for a batch with no records."""
        if not comments:
            return None
        started = time.perf_counter()
        records, alerts = process_batch(comments, sentiments, self.mood)
        assert self._producer is not None, "attach() first"
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[object] = loop.create_future()
        deliveries = BatchDeliveries(len(records) + len(alerts))
        wake = loop.call_soon_threadsafe

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:  # on the deliveries thread
            if deliveries.answer(error):
                wake(_settle, settled, deliveries.error)

        produce = self._producer.produce
        scored_name = self._topics["scored-comments"].get_topic_name()
        alerts_name = self._topics["alerts"].get_topic_name()
        for rec in records:
            produce(scored_name, encode(rec), rec.room_id.encode(), on_delivery=on_delivery)
        for alert in alerts:
            produce(alerts_name, encode(alert), alert.room_id.encode(), on_delivery=on_delivery)
            log.warning("sentiment_alert", room=alert.room_id, alert_level=alert.level, share=alert.value)
        for label, n in Counter(rec.label for rec in records).items():
            SCORED.labels(label).inc(n)
        for alert in alerts:
            ALERTS.labels(alert.level).inc()
        self.stats["scored"] += len(records)
        self.stats["alerts"] += len(alerts)
        self.stats["batches"] += 1
        self.timing["produce_s"] += time.perf_counter() - started
        CACHE_HIT_RATE.set(self.scorer.cache.hit_rate)
        return settled

    def close(self) -> None:
        """Stop the scoring and deliveries threads (after the worker stopped: nothing is queued on
        them any more, and every batch taken was acknowledged)."""
        self._executor.shutdown(wait=True)
        if self._scorer is not None:
            self._scorer.close()
        self._stopping.set()
        if self._deliveries is not None:
            self._deliveries.join()
        if self._producer is not None:
            self._producer.flush(10)

    async def _log_progress(self) -> None:
        if self.stats:
            log.info("sentiment_progress", **dict(self.stats), **self._timing())

    def _timing(self) -> dict[str, float]:
        """Where the agent's time went (seconds, cumulative): decode, score (the thread hop included),
        produce (handing records to the producer), ack_wait (inside the ack tasks, overlapped)."""
        return {k: round(v, 3) for k, v in self.timing.items()}

    def _exit_uncommitted(self, exc: BaseException) -> None:
        log.critical("sentiment_batch_failed", error=repr(exc), exc_info=exc, **dict(self.stats))
        logging.shutdown()  # flush the log handlers: os._exit skips interpreter clean-up
        os._exit(EXIT_BATCH_FAILED)


def _settle(future: asyncio.Future[object], error: object | None) -> None:
    if not future.done():
        future.set_result(error)


def _serve_metrics(app: faust.App) -> None:
    """``/metrics`` on the worker's web port: the default Prometheus registry, as text."""
    from aiohttp.web import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.page("/metrics")
    async def metrics(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # aiohttp refuses a charset in content_type=, and Prometheus' content type carries one.
        response = Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
        return cast("faust.web.Response", response)

    _ = metrics


def run_worker(settings: Settings, worker_id: str, web_port: int) -> int:
    """``livecommerce worker sentiment``: run the Faust worker until SIGTERM/SIGINT.

    Faust's web server binds ``127.0.0.1:web_port`` and serves ``/metrics`` (this job's
    ``lc_sentiment_*`` counters and the process metrics).  Faust's own per-message Prometheus
    sensors (``faust.sensors.prometheus``) are not installed: profiled under a backlog they took
    about a third of the agent's event-loop time (several label look-ups per message in, per event
    out and per ack) for metrics that this per-batch job reports per batch anyway.  Logging stays
    ours (structlog JSON lines): the Faust worker is told not to reconfigure it.  Returns the
    worker's exit status.
    """
    app = create_app(settings, worker_id, web_port)
    agent = SentimentAgent(settings)
    agent.attach(app)
    _serve_metrics(app)
    _ = agent.scorer  # load the model before joining the group, not inside the first batch
    log.info("sentiment_starting", worker=worker_id, bootstrap=settings.kafka_bootstrap, web_port=web_port,
             batch_size=agent.batch_size, max_wait_ms=agent.max_wait_ms)
    worker = faust.Worker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False,
    )
    worker.spinner = None  # no terminal spinner: our logs are JSON lines
    status = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # mode's Worker always ends with sys.exit
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    agent.close()
    log.info("sentiment_stopped", worker=worker_id, status=status, **dict(agent.stats), **agent._timing())
    return status
