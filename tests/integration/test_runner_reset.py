"""A batch whose commit fails half-way is thrown away whole, on a real broker.

The runner restarts in process after a client error.  Closing its consumer runs the revoke callback,
which used to commit the open transaction: the failed batch's outputs and input offsets went in while
the changelog records after the failing one did not, so the restored state silently missed them.  Here
a task's changelog holds one record larger than Kafka accepts, once; the runner must abort, restart
from the last commit, and end with every comment answered once and a state that counts every comment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from base.settings import Settings
from schemas import Comment, ScoredComment, decode
from schemas.base import Event
from streams.runtime.commit import CommitPolicy
from streams.runtime.job import Job, Output, Record
from streams.runtime.runner import Runner, RunnerConfig
from tests.fixtures.kafka import consume_all
from tests.integration.test_gateway import produce

pytestmark = pytest.mark.integration

COMMENTS = 60
POISONED = [True]  # the first commit that carries a comment writes an oversized changelog record


class CountingTask:
    """Answers each comment with a scored comment and keeps the count of comments in its changelog."""

    def __init__(self, records: list[Record]) -> None:
        latest = {key: value for key, value in records}
        self.count = int(latest.get(b"count", b"0") or b"0")
        self._outputs: list[Output] = []
        self._changed = False

    def process(self, events: list[Event], wall_ms: int) -> None:
        for event in events:
            assert isinstance(event, Comment)
            self.count += 1
            self._changed = True
            self._outputs.append(("scored-comments", ScoredComment(
                event_id=event.event_id, room_id=event.room_id, user_id=event.user_id, text=event.text,
                label="neutral", score=0.0, confidence=1.0, ts=event.ts)))

    def punctuate(self, wall_ms: int, caught_up: Callable[[], bool]) -> None:
        pass

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    def take_changes(self) -> list[Record]:
        if not self._changed:
            return []
        self._changed = False
        changes: list[Record] = []
        if POISONED[0]:
            POISONED[0] = False
            changes.append((b"huge", b"x" * 3_000_000))  # over the broker's and the client's limit
        return [*changes, (b"count", str(self.count).encode())]

    def take_rejections(self) -> list[tuple[Event, str, str]]:
        return []


def test_a_commit_that_fails_half_way_commits_nothing_of_its_batch(kafka_settings: Settings) -> None:
    s = kafka_settings
    tasks: dict[int, CountingTask] = {}

    def new_task(partition: int, records: list[Record]) -> CountingTask:
        tasks[partition] = CountingTask(records)
        return tasks[partition]

    job = Job(name="reset-test", inputs=("comments",), owned=frozenset({"comments"}), new_task=new_task,
              changelog="reset-test-changelog")
    now = int(time.time() * 1000)
    comments = [Comment(event_id=f"c{i}", room_id=f"r{i % 3}", user_id="u1", text="hi", ts=now)
                for i in range(COMMENTS)]
    produce(s, "comments", *comments)
    runner = Runner(s, job, "reset", RunnerConfig(policy=CommitPolicy(interval_ms=100, backlog_interval_ms=100),
                                                  batch_size=500, poll_timeout_s=0.05))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        answers = consume_all(s, "scored-comments", expected=COMMENTS, timeout=120)
        time.sleep(2)  # a doubled answer would arrive by now
        answers = consume_all(s, "scored-comments")
    finally:
        runner.stop_event.set()
        thread.join(60)
    assert not POISONED[0], "the oversized record was never written: the test did not test anything"
    assert runner.stats["restarts"] >= 1
    ids = [decode(ScoredComment, m.value()).event_id for m in answers]
    assert sorted(ids) == sorted(c.event_id for c in comments)  # every comment answered, none twice
    counts: dict[int, int] = {}  # the state the changelog restores: every comment counted, once
    for m in consume_all(s, "reset-test-changelog"):
        if m.key() == b"count":
            counts[m.partition()] = int(m.value())
    assert sum(counts.values()) == COMMENTS
