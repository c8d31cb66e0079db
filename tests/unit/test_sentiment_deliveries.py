"""The sentiment agent's per-batch delivery accounting and the Faust consumer's in-place hand-off."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.faust_consumer import start
from streams.sentiment.core import BatchDeliveries


@given(st.lists(st.one_of(st.none(), st.just("timed out")), min_size=1, max_size=40))
def test_a_batch_settles_once_on_its_last_ack_or_its_first_error(answers: list[str | None]) -> None:
    deliveries = BatchDeliveries(len(answers))
    settled_at = [i for i, error in enumerate(answers) if deliveries.answer(error)]
    first_error = next((i for i, error in enumerate(answers) if error is not None), None)
    assert settled_at == [len(answers) - 1 if first_error is None else first_error]
    assert deliveries.error == (None if first_error is None else answers[first_error])
    assert not deliveries.answer(None), "a settled batch never settles again"


def test_a_batch_is_not_settled_before_every_record_was_answered() -> None:
    deliveries = BatchDeliveries(3)
    assert not deliveries.answer(None) and not deliveries.answer(None)
    assert not deliveries.settled
    assert deliveries.answer(None) and deliveries.settled and deliveries.error is None
    with pytest.raises(ValueError):
        BatchDeliveries(0)


def test_a_coroutine_that_does_not_suspend_runs_to_its_end_in_place() -> None:
    seen: list[int] = []

    async def hand_over(n: int) -> None:
        seen.append(n)

    assert start(hand_over(1)) is None
    assert seen == [1]


def test_a_coroutine_that_suspends_goes_on_as_the_awaitable_returned() -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def hand_over() -> str:
            seen.append("before")
            got = await gate
            seen.append(got)
            await asyncio.sleep(0)
            return "done"

        rest = start(hand_over())
        assert rest is not None and seen == ["before"]
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        assert not task.done()
        gate.set_result("after")
        assert await task == "done"
        return seen

    assert asyncio.run(main()) == ["before", "after"]


def test_cancelling_the_rest_cancels_the_coroutine_and_errors_propagate() -> None:
    async def main() -> None:
        cleaned: list[bool] = []

        async def blocked() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                cleaned.append(True)

        task = asyncio.ensure_future(start(blocked()))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == [True]

        async def fails() -> None:
            raise KeyError("bad")

        with pytest.raises(KeyError):
            start(fails())

    asyncio.run(main())


def test_the_lean_consumer_copies_the_installed_fausts_drain_loop() -> None:
    """LeanConsumer carries a copy of Faust's ``_drain_messages``: if faust-streaming is upgraded and
    that method changes, the copy must be redone (this fails until then)."""
    import hashlib
    import inspect

    from faust.transport.consumer import Consumer

    from streams.faust_consumer import COPIED_DRAIN_SHA256

    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == COPIED_DRAIN_SHA256
