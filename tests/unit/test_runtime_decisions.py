"""The stream runtime's decisions without Kafka: the stale-offset skip, the gate (validation and
ONE misroute policy for every keyed input), and the commit policy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas import DeadLetter, encode
from schemas.events import Comment
from streams.partitioning import default_partition
from streams.runtime.commit import CommitPolicy
from streams.runtime.gate import KEY_MISMATCH, MISROUTED, Gate, Positions, Refused

T0 = 1_760_000_000_000
PARTITIONS = 3


def gate() -> Gate:
    return Gate({"lc.comments": "comments", "lc.order-results": "order-results"}, {"comments"},
                partitions=PARTITIONS, max_bytes=16_384, max_future_skew_ms=5_000)


def comment(room: str, ts: int = T0) -> Comment:
    return Comment(event_id=f"e-{room}", room_id=room, user_id="u1", text="hi", ts=ts)


# ---- positions: the stale-offset skip ---------------------------------------------------------

@given(st.integers(-1, 50), st.lists(st.integers(0, 80), max_size=40))
def test_positions_admit_each_offset_at_most_once_and_never_below_the_restored_position(
    start: int, offsets: list[int]
) -> None:
    positions = Positions()
    positions.own("t", 0, start)
    admitted: list[int] = []
    for offset in offsets:
        if positions.admit("t", 0, offset):
            admitted.append(offset)
    assert admitted == sorted(set(admitted))  # strictly increasing: nothing applied twice
    if start >= 0:
        assert all(o >= start for o in admitted)
    if admitted:
        assert positions.committable() == [("t", 0, admitted[-1] + 1)]


def test_a_partition_we_do_not_own_is_stale_and_forgetting_drops_it() -> None:
    positions = Positions()
    assert not positions.admit("t", 1, 0)
    positions.own("t", 1, 5)
    positions.own("u", 2, -7)
    assert positions.admit("t", 1, 5) and not positions.admit("t", 1, 5)
    positions.forget([1])
    assert not positions.admit("t", 1, 6)
    assert positions.committable() == []  # u/2 has no position yet (nothing consumed, nothing committed)


# ---- the gate -----------------------------------------------------------------------------------

@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s and s.isprintable()),
       st.integers(0, PARTITIONS - 1))
def test_every_keyed_message_is_admitted_only_on_its_murmur2_home(room: str, partition: int) -> None:
    g = gate()
    key = room.encode()
    try:
        raw = encode(comment(room))
    except Exception:  # pragma: no cover - rooms the schema refuses are not this test's concern
        return
    verdict = g.check("lc.comments", partition, 7, key, raw, T0)
    if isinstance(verdict, Comment):
        assert default_partition(key, PARTITIONS) == partition
    else:
        assert isinstance(verdict, Refused)
        verdict = verdict.letter
        assert verdict.error in {MISROUTED, "ValidationError"}
        if verdict.error == MISROUTED:
            assert default_partition(key, PARTITIONS) != partition
            assert verdict.payload == raw and verdict.offset == 7 and verdict.partition == partition


def test_null_keys_and_keys_that_differ_from_the_body_are_refused_every_time() -> None:
    g = gate()
    home = default_partition(b"RB", PARTITIONS)
    raw = encode(comment("RB"))
    for key in (None, b"RA", b"rb"):
        for _ in range(3):  # not only the first message per key
            verdict = g.check("lc.comments", home, 1, key, raw, T0)
            assert isinstance(verdict, Refused) and verdict.letter.error == KEY_MISMATCH
    assert g.stats[f"dead_{KEY_MISMATCH}"] == 9
    assert g.check("lc.comments", home, 1, b"RB", raw, T0) == comment("RB")


def test_invalid_owned_input_is_dead_lettered_and_another_jobs_output_is_only_counted() -> None:
    g = gate()
    home = default_partition(b"RB", PARTITIONS)
    bad = g.check("lc.comments", home, 3, b"RB", b"{not json", T0)
    assert isinstance(bad, Refused) and "JSON" in bad.letter.reason and bad.letter.source_topic == "lc.comments"
    assert g.check("lc.order-results", home, 3, b"RB", b"{not json", T0) is None
    assert g.stats["skipped_ValidationError"] == 1


def test_the_future_is_refused_beyond_the_allowed_skew_only() -> None:
    g = gate()
    home = default_partition(b"RC", PARTITIONS)
    assert g.check("lc.comments", home, 0, b"RC", encode(comment("RC", T0 + 5_000)), T0) == comment("RC", T0 + 5_000)
    late = g.check("lc.comments", home, 0, b"RC", encode(comment("RC", T0 + 295_000)), T0)
    assert isinstance(late, Refused) and "future" in late.letter.reason


def test_our_own_outputs_may_be_larger_than_an_input() -> None:
    g = Gate({"lc.dead-letters": "dead-letters"}, set(), partitions=PARTITIONS, max_bytes=16_384,
             max_future_skew_ms=5_000)
    big = DeadLetter(source_topic="lc.comments", payload=b"x" * 60_000, reason="too big", ts=T0)
    raw = encode(big)
    assert len(raw) > 16_384
    home = default_partition(b"lc.comments", PARTITIONS)
    assert g.check("lc.dead-letters", home, 0, b"lc.comments", raw, T0) == big  # an event to store, not a refusal


# ---- the commit policy ----------------------------------------------------------------------------

@given(st.booleans(), st.floats(0, 5000), st.booleans(), st.booleans(), st.integers(0, 2000), st.integers(0, 4000))
def test_commit_policy(
    pending: bool, since: float, backlog: bool, produced: bool, interval: int, backlog_iv: int
) -> None:
    policy = CommitPolicy(interval_ms=interval, backlog_interval_ms=backlog_iv)
    due = policy.due(pending=pending, since_last_ms=since, backlog=backlog, produced=produced)
    if not pending:
        assert not due  # nothing open, nothing to commit
    elif produced and not backlog:
        assert due  # someone waits for those outputs
    else:
        assert due == (since >= (backlog_iv if backlog else interval))


def test_the_skew_is_measured_against_arrival_not_against_a_late_reader() -> None:
    """A worker that reads a message seconds after it reached Kafka (a backlog, a restart, a replay)
    decides exactly as a live one: the broker's append time, not the reader's clock, is "now"."""
    g = gate()
    home = default_partition(b"RC", PARTITIONS)
    raw = encode(comment("RC", T0 + 5_600))  # 5.6 s ahead of its arrival at T0
    live = g.check("lc.comments", home, 0, b"RC", raw, T0, arrival_ms=T0)
    late_reader = g.check("lc.comments", home, 0, b"RC", raw, T0 + 10_000, arrival_ms=T0)
    assert isinstance(live, Refused) and isinstance(late_reader, Refused)
    assert isinstance(g.check("lc.comments", home, 0, b"RC", raw, T0 + 10_000), Comment)  # no arrival: reader's clock


# ---- the batch gate: the same decisions as the reference, message by message ----------------------

EOF_CODE, LOG_APPEND, CREATE_TIME = -191, 2, 1


class FakeError:
    def __init__(self, code: int) -> None:
        self._code = code

    def code(self) -> int:
        return self._code


class FakeMessage:
    """The accessors of confluent-kafka's Message that the gate reads."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 stamp: tuple[int, int], error: FakeError | None = None) -> None:
        self._t, self._p, self._o = topic, partition, offset
        self._k, self._v, self._s, self._e = key, value, stamp, error

    def error(self) -> FakeError | None:
        return self._e

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return self._s


ROOMS = ["RA", "RB", "RC", "房间1", "r" * 40]
_others = st.one_of(st.sampled_from([b"{not json", b"", b'{"type":"comment"}', b"x" * 20_000, b"[]", b"null"]),
                    st.binary(max_size=30), st.none())


@st.composite
def _message(draw: st.DrawFn) -> tuple[str, int, int, bytes | None, bytes | None, tuple[int, int], int | None]:
    """Mostly well-formed (keyed by its room, on its home partition), each rule broken now and then."""
    room = draw(st.sampled_from(ROOMS))
    dt = draw(st.sampled_from([-60_000, 0, 0, 0, 3_999, 4_001, 4_999, 5_001, 300_000]))
    body = encode(comment(room, T0 + dt)) if draw(st.integers(0, 4)) else draw(_others)
    key = room.encode() if draw(st.integers(0, 4)) else draw(st.sampled_from([None, b"rb", b"\xff\xfe", b"", b"RA"]))
    home = default_partition(room.encode(), PARTITIONS)
    partition = home if draw(st.integers(0, 3)) else draw(st.integers(0, PARTITIONS - 1))
    stamp = draw(st.sampled_from([(LOG_APPEND, T0 - 1_000), (LOG_APPEND, T0 + 200_000), (CREATE_TIME, T0 + 1),
                                  (0, -1)]))
    topic = draw(st.sampled_from(["lc.comments", "lc.comments", "lc.order-results"]))
    error = EOF_CODE if draw(st.integers(0, 9)) == 0 else None
    return topic, partition, draw(st.integers(0, 12)), key, body, stamp, error


_messages = st.lists(_message(), max_size=30)


@given(_messages, st.integers(-1, 3))
def test_the_batch_gate_decides_every_message_as_the_reference_does(
    rows: list[tuple[str, int, int, bytes | None, bytes | None, tuple[int, int], int | None]], start: int
) -> None:
    messages = [FakeMessage(t, p, o, k, v, s, FakeError(e) if e is not None else None) for t, p, o, k, v, s, e in rows]
    batch_gate, reference = gate(), gate()
    batch_pos, ref_pos = Positions(), Positions()
    for pos in (batch_pos, ref_pos):
        for topic in ("lc.comments", "lc.order-results"):
            for p in range(PARTITIONS):
                if (topic, p) != ("lc.comments", 2):  # not ours: all its messages are stale
                    pos.own(topic, p, start)
    at_end_batch: set[tuple[str, int]] = {("lc.comments", 0)}
    got = batch_gate.sort(messages, batch_pos, T0, eof_code=EOF_CODE, log_append_time=LOG_APPEND,
                          traced=frozenset({Comment}), at_end=at_end_batch)

    want_parts: dict[int, list[object]] = {}
    want_dead: list[DeadLetter] = []
    stale, admitted = 0, False
    at_end_ref: set[tuple[str, int]] = {("lc.comments", 0)}
    for m in messages:
        t, p, o = m.topic(), m.partition(), m.offset()
        if m.error() is not None:
            at_end_ref.add((t, p))
            continue
        if not ref_pos.admit(t, p, o):
            stale += 1
            continue
        admitted = True
        at_end_ref.discard((t, p))
        stamp_type, stamp = m.timestamp()
        verdict = reference.check(t, p, o, m.key(), m.value(), T0, stamp if stamp_type == LOG_APPEND else None)
        if isinstance(verdict, Refused):
            want_dead.append(verdict.letter)
        elif verdict is not None:
            want_parts.setdefault(p, []).append(verdict)

    assert got.error is None
    assert got.by_partition == want_parts
    assert got.dead == want_dead
    assert (got.stale, got.admitted) == (stale, admitted)
    assert batch_gate.stats == reference.stats
    assert batch_pos.next == ref_pos.next
    assert at_end_batch == at_end_ref
    assert len(got.sources) == sum(isinstance(e, Comment) for events in want_parts.values() for e in events)


def test_a_consumer_error_stops_the_batch() -> None:
    g, positions = gate(), Positions()
    positions.own("lc.comments", 0, 0)
    raw = encode(comment("RA"))
    msgs = [FakeMessage("lc.comments", 0, 0, b"RA", raw, (CREATE_TIME, T0)),
            FakeMessage("lc.comments", 0, 1, None, None, (0, -1), FakeError(-185))]
    got = g.sort(msgs, positions, T0, eof_code=EOF_CODE, log_append_time=LOG_APPEND)
    assert got.error is not None and got.error.code() == -185
