"""Slow-client policy: latest state instead of a backlog, and a drop past the limit (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_gateway.backpressure import BufferPolicy, ClientLag, Verdict

POLICY = BufferPolicy(high_water=1000, limit=10_000, max_behind_s=5.0)


def test_a_client_that_falls_behind_skips_then_catches_up_with_one_snapshot() -> None:
    lag = ClientLag()
    assert POLICY.decide(lag, 0, 0.0) is Verdict.SEND
    assert POLICY.decide(lag, 5000, 1.0) is Verdict.SKIP
    assert POLICY.decide(lag, 4000, 2.0) is Verdict.SKIP
    assert POLICY.decide(lag, 10, 3.0) is Verdict.SNAPSHOT
    assert POLICY.decide(lag, 10, 3.1) is Verdict.SEND


def test_a_client_is_dropped_past_the_byte_limit_or_behind_too_long() -> None:
    assert POLICY.decide(ClientLag(), 10_001, 0.0) is Verdict.DROP
    lag = ClientLag()
    assert POLICY.decide(lag, 2000, 0.0) is Verdict.SKIP
    assert POLICY.decide(lag, 2000, 5.0) is Verdict.SKIP
    assert POLICY.decide(lag, 2000, 5.01) is Verdict.DROP


@given(st.lists(st.tuples(st.integers(0, 20_000), st.floats(0, 2)), max_size=50))
def test_never_sends_above_high_water_and_drops_only_for_a_reason(steps: list[tuple[int, float]]) -> None:
    lag, now = ClientLag(), 0.0
    for buffered, dt in steps:
        now += dt
        behind_since = lag.behind_since
        verdict = POLICY.decide(lag, buffered, now)
        if verdict in (Verdict.SEND, Verdict.SNAPSHOT):
            assert buffered <= POLICY.high_water and lag.behind_since is None
        if verdict is Verdict.SNAPSHOT:
            assert behind_since is not None  # a snapshot only ends a period of skipping
        if verdict is Verdict.DROP:
            assert buffered > POLICY.limit or (
                behind_since is not None and now - behind_since > POLICY.max_behind_s)


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        BufferPolicy(high_water=10, limit=5)
    with pytest.raises(ValueError):
        BufferPolicy(max_behind_s=0)
