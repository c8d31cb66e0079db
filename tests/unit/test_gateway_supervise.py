"""A failing background task is restarted, then taken down loudly; never silent (restart policy pure, shell real)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from ws_gateway.supervise import RestartPolicy, Supervisor


@given(gaps=st.lists(st.floats(0, 30), min_size=1, max_size=50))
def test_more_than_max_restarts_within_the_window_gives_up(gaps: list[float]) -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60.0)
    failures: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        failures, restart = policy.after_failure(failures, now)
        assert restart == (len([t for t in failures if now - t < 60.0]) <= 3)
        assert all(now - t < 60.0 for t in failures)


def test_a_task_that_keeps_failing_is_restarted_then_reported_fatal_and_health_says_so() -> None:
    async def scenario() -> None:
        runs, fatal = [], []

        async def flaky() -> None:
            runs.append(1)
            await asyncio.sleep(0)
            raise RuntimeError("Set changed size during iteration")

        supervisor = Supervisor(RestartPolicy(max_restarts=2, window_s=60, backoff_s=0.0),
                                lambda name, exc: fatal.append((name, str(exc))))
        supervisor.start("ticker", flaky)
        while not fatal:
            await asyncio.sleep(0.001)
        health = supervisor.tasks["ticker"]
        assert len(runs) == 3 and health.failures == 3 and health.gave_up and not health.running
        assert fatal == [("ticker", "Set changed size during iteration")]
        assert supervisor.failed() and "RuntimeError" in (health.last_error or "")
        await supervisor.stop()

    asyncio.run(scenario())


def test_a_task_that_failed_once_runs_again_and_is_degraded_not_failed() -> None:
    async def scenario() -> None:
        calls = []

        async def once_bad() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("boom")
            await asyncio.Event().wait()

        supervisor = Supervisor(RestartPolicy(backoff_s=0.0), lambda name, exc: None)
        supervisor.start("ticker", once_bad)
        while len(calls) < 2:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)
        health = supervisor.tasks["ticker"]
        assert health.running and health.failures == 1 and not supervisor.failed()
        assert supervisor.degraded(health.last_failure or 0.0)
        await supervisor.stop()

    asyncio.run(scenario())
