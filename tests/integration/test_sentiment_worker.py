"""The sentiment job's Faust agent on a real broker with the committed model, run as the real
``livecommerce worker sentiment`` process.

- every valid comment is scored, keyed by room on Kafka's murmur2 partition, with the label a
  clear text must get; re-sent comments give identical records; a souring room raises tiered
  alerts; invalid comments produce nothing, are counted in /metrics and are never dead-lettered
  by this job; SIGTERM stops the worker cleanly (status 0);
- a worker killed with SIGKILL mid-stream and restarted ends with every valid comment scored: the
  job is at least once (see the worker's docstring), so a replayed comment may be scored twice,
  and its copies agree on everything, the score within float rounding (static int8).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Producer

from base.kafka import make_producer
from base.settings import REPO_ROOT, Settings
from schemas import decode, encode, normalize_text
from schemas.events import Alert, Comment, ScoredComment
from streams.partitioning import default_partition
from tests.fixtures.kafka import consume_all, free_ports

if TYPE_CHECKING:
    from confluent_kafka import Message

pytestmark = pytest.mark.integration

pytest.importorskip("onnxruntime")

HAPPY = ["主播yyds", "太好看了吧", "love it", "抢到了！开心", "great deal", "爱了爱了", "so pretty", "买买买"]
ANGRY = ["垃圾", "骗子", "太贵了", "scam", "质量太差了", "fake product", "退钱", "再也不买了"]
NEUTRAL = ["来了", "多少钱", "how much", "有XL码吗"]
#: The label each clear text must get, by its normalised form (the form a Comment carries).
EXPECTED_LABEL = {normalize_text(t): label for texts, label in ((HAPPY, "positive"), (ANGRY, "negative"),
                                                                (NEUTRAL, "neutral")) for t in texts}
SOUR_FROM = 120
#: The model is statically quantised (fixed activation scales), so the same text scored in two
#: different batches (e.g. before and after a restart) gets the same score up to float rounding;
#: the dynamic int8 model this replaced differed by up to ~0.35.
BATCH_NOISE = 0.01


class WorkerProcess:
    """One ``livecommerce worker sentiment`` process with its own web port and log file."""

    def __init__(self, settings: Settings, log_dir: Path, worker_id: str = "t1") -> None:
        self.web_port = free_ports(1)[0]
        self.log_path = log_dir / f"sentiment-{worker_id}-{self.web_port}.log"
        env = {**os.environ, **settings.as_env(), "LC_LOG_FORMAT": "json", "LC_LOG_LEVEL": "INFO"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "livecommerce.cli", "worker", "sentiment", "--worker-id", worker_id,
                 "--web-port", str(self.web_port)],
                env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def metric(self, name: str) -> float:
        """Sum of the samples of ``name`` on the worker's /metrics page (Faust's web server)."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=10).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                   if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "))

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the worker's web server answers (model loaded; it joins the group a moment later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"worker exited {self.proc.returncode}:\n{self.log_tail()}"
            try:
                self.metric("lc_sentiment_scored_total")
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"worker not up after {timeout} s:\n{self.log_tail()}")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait: Faust finishes the fetched comments, commits and leaves the group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"worker ignored SIGTERM for {timeout} s:\n{self.log_tail()}") from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _producer(settings: Settings) -> Producer:
    # zstd, as the simulator prefers: the Faust consumer (aiokafka) must decode every codec a producer may use
    return make_producer(settings, {"compression.type": "zstd"})


def _wait_for(settings: Settings, topic: str, count: int, worker: WorkerProcess, timeout: float) -> list[Message]:
    """Messages of ``topic`` once at least ``count`` are there (the worker must stay alive)."""
    deadline = time.monotonic() + timeout
    messages: list[Message] = []
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}"
        messages = consume_all(settings, topic, expected=count, timeout=2)  # returns once count arrived
        if len(messages) >= count:
            return messages
        time.sleep(0.5)
    raise AssertionError(f"{len(messages)} of {count} {topic} records after {timeout} s:\n{worker.log_tail()}")


def _scored(msg: Message) -> ScoredComment:
    return decode(ScoredComment, msg.value() or b"", now_ms=2**62)


def _alert(msg: Message) -> Alert:
    return decode(Alert, msg.value() or b"", now_ms=2**62)


def _comments(now: int) -> tuple[list[Comment], list[bytes]]:
    valid: list[Comment] = []
    for i in range(400):
        room = f"room-{i % 4}"
        if room == "room-3" and i >= SOUR_FROM:
            text = ANGRY[(i // 4) % len(ANGRY)]  # room-3 turns sour after its first 30 comments
        else:
            text = (HAPPY + NEUTRAL)[i % (len(HAPPY) + len(NEUTRAL))]
        valid.append(Comment(event_id=f"c{i}", room_id=room, user_id=f"u{i % 37}", text=text, ts=now + i * 10))
    invalid = [b"{not json", b'{"type":"comment","event_id":"x"}', encode(valid[0]).replace(b'"c0"', b'""')]
    return valid, invalid


def _assert_keyed_by_room(messages: list[Message], room_of: list[str], partitions: int) -> None:
    for msg, room in zip(messages, room_of, strict=True):
        assert msg.key() == room.encode()
        assert msg.partition() == default_partition(room.encode(), partitions), "not Kafka's murmur2 partition"


def test_comments_are_scored_once_and_a_souring_room_raises_tiered_alerts(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    now = int(time.time() * 1000) - 60_000
    valid, invalid = _comments(now)
    resent = valid[5:15]  # a client re-sending comments: same event_id, same text
    producer = _producer(kafka_settings)
    topic = kafka_settings.topic("comments")
    for j, c in enumerate(valid):
        producer.produce(topic, encode(c), c.room_id.encode())
        if j % 100 == 0:
            producer.produce(topic, invalid[(j // 100) % len(invalid)], c.room_id.encode())
    for c in resent:
        producer.produce(topic, encode(c), c.room_id.encode())
    producer.flush(30)
    n_invalid = len(range(0, len(valid), 100))
    n_records = len(valid) + len(resent)

    worker = WorkerProcess(kafka_settings, tmp_path)
    try:
        _wait_for(kafka_settings, "scored-comments", n_records, worker, timeout=120)
        deadline = time.monotonic() + 30  # counters move after the batch's records are acknowledged
        while worker.metric("lc_sentiment_scored_total") < n_records and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker.metric("lc_sentiment_scored_total") == n_records
        assert worker.metric("lc_sentiment_skipped_invalid_total") == n_invalid
        assert worker.metric("lc_sentiment_alerts_total") == 2
    finally:
        status = worker.terminate()
    assert status == 0, worker.log_tail()
    assert f'"skipped_invalid": {n_invalid}' in worker.log_path.read_text(), "stop summary counts the skipped"

    scored_msgs = consume_all(kafka_settings, "scored-comments", timeout=5)  # to the end: no extra record
    scored = [_scored(m) for m in scored_msgs]
    assert len(scored) == n_records
    assert Counter(s.event_id for s in scored) == Counter(c.event_id for c in valid + resent)
    _assert_keyed_by_room(scored_msgs, [s.room_id for s in scored], kafka_settings.partitions)
    by_id = {c.event_id: c for c in valid}
    copies: defaultdict[str, list[ScoredComment]] = defaultdict(list)
    for s in scored:
        c = by_id[s.event_id]
        assert (s.room_id, s.user_id, s.text, s.ts) == (c.room_id, c.user_id, c.text, c.ts)
        assert s.label == EXPECTED_LABEL[c.text], f"{c.text!r} scored {s.label}"
        copies[s.event_id].append(s)
    for c in resent:  # the re-sent copy is answered from the cache: the very same record
        first, second = copies[c.event_id]
        assert encode(first) == encode(second)

    alert_msgs = consume_all(kafka_settings, "alerts", timeout=5)
    alerts = [_alert(m) for m in alert_msgs]
    assert {a.room_id for a in alerts} == {"room-3"}
    assert [a.level for a in alerts] == ["warning", "critical"]
    assert all(a.kind == "negative_sentiment" and a.value >= a.threshold for a in alerts)
    _assert_keyed_by_room(alert_msgs, [a.room_id for a in alerts], kafka_settings.partitions)
    assert consume_all(kafka_settings, "dead-letters", timeout=3) == []


def test_a_worker_killed_mid_stream_and_restarted_scores_every_comment(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Live traffic at 300 comments/s for ~17 s; SIGKILL once 2,400 are scored (~8 s: past Faust's
    offset commits, every 0.5 s); a new worker (same group) resumes from the last commit: every valid
    comment ends up scored, only what followed that commit is scored twice, and copies agree."""
    texts = HAPPY + ANGRY + NEUTRAL
    total, rate, kill_after = 5000, 300.0, 2400
    expected_ids = {f"k{i}" for i in range(total)}
    sent: list[str] = []
    producer_error: list[BaseException] = []

    def feed() -> None:
        try:
            producer = _producer(kafka_settings)
            topic = kafka_settings.topic("comments")
            started = time.monotonic()
            for i in range(total):
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                live = Comment(event_id=f"k{i}", room_id=f"room-{i % 7}", user_id=f"u{i % 53}",
                               text=texts[i % len(texts)], ts=int(time.time() * 1000))
                producer.produce(topic, encode(live), live.room_id.encode())
                sent.append(live.event_id)
                if i % 250 == 0:
                    producer.produce(topic, b'{"broken": ', live.room_id.encode())
                producer.poll(0)
            producer.flush(30)
        except BaseException as exc:  # surfaced by the test thread below
            producer_error.append(exc)

    first = WorkerProcess(kafka_settings, tmp_path, worker_id="k1")
    feeder = threading.Thread(target=feed, daemon=True)
    second: WorkerProcess | None = None
    try:
        first.wait_ready()  # start-up (imports, model) takes seconds on a busy 2-core machine
        feeder.start()
        before_kill = _wait_for(kafka_settings, "scored-comments", kill_after, first, timeout=120)
        first.kill()
        assert len(sent) < total, "the kill must land while comments still arrive"
        second = WorkerProcess(kafka_settings, tmp_path, worker_id="k2")
        feeder.join(60)
        assert not feeder.is_alive() and not producer_error, producer_error
        deadline = time.monotonic() + 120
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < total:
            assert second.proc.poll() is None, second.log_tail()
            seen = {_scored(m).event_id
                    for m in consume_all(kafka_settings, "scored-comments", timeout=2)}
            time.sleep(0.5)
    finally:
        if first.proc.poll() is None:
            first.kill()
        status = second.terminate() if second is not None else None
    assert status == 0, second.log_tail() if second is not None else "no second worker"

    scored_msgs = consume_all(kafka_settings, "scored-comments", timeout=5)
    scored = [_scored(m) for m in scored_msgs]
    assert {s.event_id for s in scored} == expected_ids, "a comment was lost"
    assert len(before_kill) < total
    _assert_keyed_by_room(scored_msgs, [s.room_id for s in scored], kafka_settings.partitions)
    copies: defaultdict[str, list[ScoredComment]] = defaultdict(list)
    for s in scored:
        copies[s.event_id].append(s)
        assert s.label == EXPECTED_LABEL[s.text]
    duplicated = {k: v for k, v in copies.items() if len(v) > 1}
    for event_id, versions in duplicated.items():
        base = versions[0]
        for other in versions[1:]:
            assert (other.room_id, other.user_id, other.text, other.ts, other.label) == (
                base.room_id, base.user_id, base.text, base.ts, base.label), event_id
            assert abs(other.score - base.score) <= BATCH_NOISE
            assert abs(other.confidence - base.confidence) <= BATCH_NOISE
    print(f"scored {len(scored)} records for {total} comments; {len(duplicated)} replayed after the kill")
    # Offsets commit every 0.5 s: the replay is what followed the last commit, not the whole run.
    assert len(duplicated) < len(before_kill) / 2, "the restart replayed most of the run: commits lag"
    assert consume_all(kafka_settings, "dead-letters", timeout=3) == []
