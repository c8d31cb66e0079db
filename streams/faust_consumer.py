"""Faust's consumer with a cheaper hand-off per message (faust-streaming 0.15.3, aiokafka driver).

Why: Faust's fetcher (``Consumer._drain_messages``) hands every fetched message to the topic's
conductor with ``await self.wait_first(callback(message), self.suspend_flow.wait())``, which
wraps four tasks (the callback, the suspend-flow, stopped and crashed waits), waits on them with
``asyncio.wait`` and cancels three of them: per message.  The callback almost never suspends (it
decodes the message and puts the event on the stream's queue with ``put_nowait``), yet the tasks
only start on the next turn of the event loop, so every message also costs two or three loop
iterations.  Profiled on the sentiment agent working off a backlog, this per-message path was
about a third of the event loop's busy time, the largest single part of it.

What changes: :class:`LeanConsumer` runs the callback's coroutine in place until it first
suspends (:func:`start`).  If it finishes without suspending (the common case), the message is
handed over with no task and no loop iteration.  If it suspends (flow control during a
rebalance, a full stream queue, the producer buffer's back-pressure), the rest of the coroutine
becomes a task and is raced against ``suspend_flow``, ``stopped`` and ``crashed`` through
``wait_first`` exactly as Faust does.  Everything else of ``_drain_messages`` (offsets, gaps,
commit-every, the yield every 100 messages, stop handling) is Faust's code, unchanged.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service, ServiceT


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on driving ``coro``, which already yielded ``yielded`` to its driver (as ``yield from``
    would: what the outer task sends or throws in is passed on)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # passed on to the coroutine, as yield from does
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _rest(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _resume(coro, yielded)


def start(awaitable: Awaitable[Any]) -> Awaitable[Any] | None:
    """Run a coroutine in place until it finishes (``None``) or first suspends: then the awaitable
    of the rest of it, to be awaited (or wrapped in a task) by the caller.  Exceptions propagate.
    Any other awaitable is returned as it is."""
    if not isinstance(awaitable, types.CoroutineType):
        return awaitable
    coro = awaitable
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return _rest(coro, yielded)


#: sha256 (first 16 hex digits) of the source of the Faust ``Consumer._drain_messages`` that
#: :class:`LeanConsumer` copies; a unit test fails when an upgrade changes it, so the copy is redone.
COPIED_DRAIN_SHA256 = "44a2500309e83c63"


class LeanConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; only :meth:`_drain_messages` differs (see the module docstring)."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - Faust's loop
        # Faust 0.15.3's Consumer._drain_messages, but the callback runs in place until it suspends
        # (the original: ``await self.wait_first(callback(message), self.suspend_flow.wait())``).
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            rest = start(callback(message))
                            if rest is not None:  # it suspended: race it as Faust does
                                await self.wait_first(asyncio.ensure_future(rest), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


class LeanTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`LeanConsumer`."""

    Consumer = LeanConsumer
