"""The ClickHouse sink on a real broker and the real engine: killed with SIGKILL mid-stream, restarted,
and still exactly the produced rows in every table (and a rollup that agrees with them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from base.settings import REPO_ROOT, Settings
from schemas import TOPICS, SaleConfig, encode
from schemas.base import Event
from schemas.clickhouse import spec_for
from streams.sink.core import order_of_result
from streams.sink.job import STORED_TOPICS
from tests.fixtures.clickhouse import query_in_subprocess
from tests.fixtures.kafka import free_ports
from tests.integration.test_warehouse import sample_events
from warehouse.pseudonym import pseudonymise
from warehouse.rollups import raw_rollup_query, rollup_query, rounded
from warehouse.store import NATURAL_ID

pytestmark = pytest.mark.integration

TOPIC_OF_EVENT = {spec.event: name for name, spec in TOPICS.items()}
#: No flash-sale job runs here: sale configs go where it would write the ones it applied (the sink
#: stores those, never the raw sale-config topic).
TOPIC_OF_EVENT[SaleConfig] = "sale-config-applied"


def stored_sample(seed: int, per_type: int) -> dict[str, list[Event]]:
    """``sample_events`` of the types the sink worker stores (the console's new topics, once they are in
    its STORED_TOPICS)."""
    return {tag: items for tag, items in sample_events(seed=seed, per_type=per_type).items()
            if TOPIC_OF_EVENT[type(items[0])] in STORED_TOPICS}


INVALID = [b"{not json", b'{"type":"comment","v":1}', b"\xff\xfe", b'{"type":"like","event_id":"x"}']


def produce(settings: Settings, events: list[Event], invalid_per_topic: int = 0) -> None:
    from base.kafka import make_producer

    producer = make_producer(settings)

    def send(topic: str, value: bytes, key: bytes | None) -> None:
        while True:
            try:
                producer.produce(settings.topic(topic), value, key)
                return
            except BufferError:
                producer.poll(0.05)

    for event in events:
        spec = TOPICS[TOPIC_OF_EVENT[type(event)]]
        send(spec.name, encode(event), spec.key_of(event))
    for topic in ("comments", "orders", "room-counters"):
        for i in range(invalid_per_topic):
            send(topic, INVALID[i % len(INVALID)], b"bad")
    assert producer.flush(60) == 0


#: Runs the real ``livecommerce worker sink``, but SIGKILLs itself right after the Nth batch was
#: inserted and before its offsets are committed: the worst moment, made certain instead of lucky.
_KILL_AFTER_INSERT = """
import os, signal, sys
from warehouse.writer import WarehouseWriter as ClickHouseSink
from livecommerce.cli import main
kill_after, calls = int(sys.argv[1]), [0]
original = ClickHouseSink.write_tables
def write_tables(self, tables):
    rows = original(self, tables)
    calls[0] += 1
    if calls[0] >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return rows
ClickHouseSink.write_tables = write_tables
sys.exit(main(sys.argv[2:]))
"""


class SinkProcess:
    """``livecommerce worker sink`` in a subprocess, logging to a file."""

    def __init__(self, settings: Settings, dsn: str, log_path: Path) -> None:
        # small batches, so that the 36,000 events of the kill test always take several inserts (one big
        # batch would leave no insert to die after, however fast the machine reads)
        self.env = {**os.environ, **settings.as_env(), "LC_CLICKHOUSE_DSN": dsn, "LC_LOG_FORMAT": "json",
                    "LC_SINK_MAX_ROWS": "4000"}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, kill_after_insert: int | None = None) -> None:
        """Start the worker; with ``kill_after_insert=n`` it SIGKILLs itself between the n-th insert and
        its offset commit."""
        args = ["worker", "sink", "--web-port", str(free_ports(1)[0])]
        if kill_after_insert is None:
            command = [sys.executable, "-m", "livecommerce.cli", *args]
        else:
            command = [sys.executable, "-c", _KILL_AFTER_INSERT, str(kill_after_insert), *args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait(180)
        self.proc = None
        return code

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(120)
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, count: int = 1, deadline_s: float = 180) -> None:
        end = time.monotonic() + deadline_s
        while self.log().count(needle) < count:
            assert self.proc is not None and self.proc.poll() is None, f"sink exited:\n{self.log()[-3000:]}"
            assert time.monotonic() < end, f"no {needle!r} in the sink log:\n{self.log()[-3000:]}"
            time.sleep(0.1)


@pytest.fixture
def sink_process(kafka_settings: Settings, tmp_path: Path) -> Iterator[SinkProcess]:
    proc = SinkProcess(kafka_settings, f"chdb://{tmp_path / 'clickhouse'}", tmp_path / "sink.log")
    try:
        yield proc
    finally:
        if proc.proc is not None:
            with contextlib.suppress(Exception):
                proc.signal(signal.SIGKILL)


def stored_of(events: dict[str, list[Event]], table: str) -> list[Event]:
    """The events ``table`` must hold: its own, except ``orders``, which holds the attempts the
    flash-sale job decided (derived from the accepted / rejected order results), never raw attempts."""
    if table == "orders":
        return [order for r in events["order_result"] if (order := order_of_result(r)) is not None]  # type: ignore[arg-type]
    return events[next(tag for tag in events if spec_for(tag).table == table)]


def sink_caught_up(settings: Settings) -> bool:
    """Whether the sink group's committed offsets reached the end of every stored partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.topic_prefix}sink"})
    try:
        parts = [TopicPartition(settings.topic(t), p) for t in STORED_TOPICS for p in range(settings.partitions)]
        for tp in consumer.committed(parts, timeout=30):
            high = consumer.get_watermark_offsets(tp, timeout=30)[1]
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def test_sigkill_mid_stream_and_restart_leave_exactly_the_produced_rows(
    kafka_settings: Settings, sink_process: SinkProcess, tmp_path: Path
) -> None:
    events = stored_sample(seed=11, per_type=4000)
    first = [e for items in events.values() for e in items[:3000]]
    tail = [e for items in events.values() for e in items[3000:]]
    produce(kafka_settings, first, invalid_per_topic=20)

    # 1. killed after its 2nd batch was inserted and before that batch's offsets were committed:
    #    the restart re-inserts the batch (duplicates in raw tables, counted twice by the views)
    sink_process.start(kill_after_insert=2)
    assert sink_process.wait() == -signal.SIGKILL
    assert sink_process.log().count('"sink_flushed"') == 1
    # 2. killed at whatever point it has reached after its next committed batch, mid-stream
    sink_process.start()
    sink_process.wait_for_log('"sink_flushed"', count=2)
    assert sink_process.signal(signal.SIGKILL) == -signal.SIGKILL

    produce(kafka_settings, tail + first[:500])  # more while it is down, plus a producer-side duplicate
    sink_process.start()
    end = time.monotonic() + 300
    while not sink_caught_up(kafka_settings):
        assert time.monotonic() < end, f"sink did not catch up:\n{sink_process.log()[-3000:]}"
        time.sleep(0.5)
    sink_process.wait_for_log('"sink_rollup_rebuilt"')
    assert sink_process.signal(signal.SIGTERM) == 0
    log = sink_process.log()
    assert '"sink_stopped_clean"' in log

    database = "livecommerce"
    tables = sorted({spec_for(tag).table for tag in events})
    queries = [f"SELECT uniqExact({NATURAL_ID[t]}), count() FROM {database}.{t} FINAL" for t in tables]
    queries += [rollup_query(database), raw_rollup_query(database)]
    results = query_in_subprocess(sink_process.env["LC_CLICKHOUSE_DSN"], queries)
    for table, rows in zip(tables, results, strict=False):
        produced = len(stored_of(events, table))
        assert rows[0] == [produced, produced], table
    rollup, raw = (rounded(rows) for rows in results[-2:])
    assert rollup and rollup == raw


def test_the_sink_stores_pseudonyms_never_raw_viewer_ids(
    kafka_settings: Settings, sink_process: SinkProcess
) -> None:
    events = stored_sample(seed=12, per_type=300)
    produce(kafka_settings, [e for items in events.values() for e in items])
    sink_process.start()
    end = time.monotonic() + 300
    while not sink_caught_up(kafka_settings):
        assert time.monotonic() < end, f"sink did not catch up:\n{sink_process.log()[-3000:]}"
        time.sleep(0.5)
    assert sink_process.signal(signal.SIGTERM) == 0

    secret = sink_process.env["LC_PSEUDONYM_SECRET"]
    with_users = {
        table: {e.user_id for e in stored_of(events, table)}  # type: ignore[attr-defined]
        for table in {spec_for(tag).table for tag in events} if "user_id" in spec_for(table).column_names
    }
    assert with_users, "the sample has events with viewer ids"
    queries = [f"SELECT arraySort(groupUniqArray(user_id)) FROM livecommerce.{t}" for t in with_users]
    results = query_in_subprocess(sink_process.env["LC_CLICKHOUSE_DSN"], queries)
    for (table, raw_ids), rows in zip(with_users.items(), results, strict=True):
        stored = set(rows[0][0]) - {""}  # likes coalesced by the gateway carry no viewer
        assert stored == {pseudonymise(u, secret) for u in raw_ids if u is not None}, table
        assert not stored & raw_ids, table
