"""The project's Faust app (faust-streaming): one factory, topics from the schemas registry.

Why a factory and not a module-level ``app = faust.App(...)``: the settings (broker, topic prefix,
partitions, data dir, web port) differ between the demo stack, each test and each worker process,
and a module-level app would freeze whatever the environment said at import time.

Why one app *per job* from this factory: a Faust app is one consumer group, and every worker of an
app must run every agent of it (the group's assignor hands out the partitions of all subscribed
topics).  The project runs each job as its own process (``livecommerce worker JOB``), so each
agent-based job gets its own app id ``<prefix><job>``.  For the sentiment job that is the same
group id the earlier confluent-kafka loop committed under, so a running deployment resumes from
its committed offsets.  Today the sentiment job is the only agent; counters and flash-sale stay
the stream runtime (streams/runtime) for measured throughput reasons (docs/decisions/0001).

Wire format: topics carry raw bytes (``key_serializer``/``value_serializer`` ``"raw"``) and the
agents decode and encode them with the project's own msgspec codec (:func:`schemas.decode`,
:func:`schemas.encode`), so each event has one definition (``schemas/events.py``), not a second
one as a ``faust.Record``.

Partitioning: Faust's producer is aiokafka's ``DefaultPartitioner`` (``producer_partitioner`` left
unset), which is Kafka's murmur2 over the key bytes, the same as the Java client and our
librdkafka producers (``partitioner=murmur2_random``); the integration test checks the partition
of every produced record against :func:`streams.partitioning.default_partition`.

Topics: Faust does not create source topics and our broker has auto-creation disabled, so every
topic is created up front by ``livecommerce topics``/``up`` (:mod:`base.kafka_admin`);
``partitions`` here only tells Faust what to expect.  The app creates no topic of its own: the
leader-election topic is disabled (no ``on_leader`` timers), and a job that adds a Table gets its
changelog topic created by Faust with ``topic_replication_factor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import faust
from faust.types import TopicT, TransportT
from mode import ServiceT

from base.settings import Settings
from schemas import TOPICS
from streams.faust_consumer import LeanTransport

#: Loopback only: the Faust web server (and /metrics) is for the local scraper and operators.
WEB_BIND = "127.0.0.1"

#: Records per fetch round (see ``broker_max_poll_records`` in :func:`create_app`).
MAX_POLL_RECORDS = 500


class App(faust.App):
    """``faust.App`` with two per-message costs removed (profiled on the sentiment agent under a
    backlog; figures in ``docs/sentiment.md``):

    - the consumer hands a fetched message to its stream without four tasks and two loop turns
      per message (:class:`streams.faust_consumer.LeanConsumer`);
    - Faust's Monitor sensor is not installed: it records every message in, every stream event in
      and out and every send (per-topic counters, timestamps, a deque of latencies) for Faust's
      ``/stats`` pages, which this project does not serve (``/metrics`` is ours, per batch).
      ``app.monitor`` still exists (the consumer reports end offsets and commits to it directly);
      it is only not a sensor.
    """

    def _new_transport(self) -> TransportT:
        return LeanTransport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        dependencies = super().on_init_dependencies()  # adds the monitor to the sensors
        self.sensors.remove(self.monitor)
        return dependencies


def create_app(
    settings: Settings, worker_id: str = "1", web_port: int | None = None, *, job: str = "sentiment"
) -> faust.App:
    """A Faust app for ``job`` configured from ``settings``; each worker passes its own web port.

    ``worker_id`` names this worker in the broker (client id) and gives it its own table-state
    directory under ``<data_dir>/faust/`` (two workers on one machine must not share one).
    """
    port = settings.worker_web_port if web_port is None else web_port
    datadir = Path(settings.data_dir) / "faust" / f"{job}-{worker_id}"
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return App(
        settings.topic(job),
        broker=[f"kafka://{hostport.strip()}" for hostport in settings.kafka_bootstrap.split(",")],
        broker_client_id=f"{job}-{worker_id}",
        datadir=str(datadir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,  # no on_leader timers: no leader-election topic to create
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        # What a worker killed with kill -9 replays is what it processed since its last commit:
        # Faust's default (2.8 s) is ~5,000 comments at model speed; 0.5 s costs one OffsetCommit
        # request a half second and cuts the replay to a few hundred.
        broker_commit_interval=0.5,
        # At most this many records per fetch round, fewer than the room the stream's buffer
        # (``stream_buffer_maxsize``, 4,096) still has when Faust pauses a partition under
        # pressure (at 4,096 / 1.25): so a round never meets a full buffer, and no message has to
        # wait for room on the consumer's slow path (a task and a wait per message, see
        # :mod:`streams.faust_consumer`).  Unlimited (Faust's default), a round under a backlog
        # holds up to 1 MB per partition, thousands of comments, and most of them met a full buffer.
        broker_max_poll_records=MAX_POLL_RECORDS,
        producer_acks=-1,
        web_enabled=True,
        web_bind=WEB_BIND,
        web_host=WEB_BIND,
        web_port=port,
        web_in_thread=False,
    )


def declare_topics(app: faust.App, settings: Settings) -> dict[str, TopicT]:
    """Every topic of :data:`schemas.TOPICS` as a raw-bytes Faust topic, by logical name.

    Declaring a topic neither creates nor subscribes to it; an agent subscribes to the topics it
    is given, and the others are only written to with ``send``.
    """
    return {
        name: app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            internal=False,
        )
        for name in TOPICS
    }
