"""Background tasks of the gateway never die silently: restarted, or the process goes down loudly.

Why: the gateway's ticker (likes to Kafka, delivery reports to clients, quiet rooms' last change) once
died on one exception and nothing noticed: acks stopped, likes stopped, and ``/healthz`` said ok.
Now every background task runs under :class:`Supervisor`: a failure is logged with its traceback,
counted (``lc_gateway_task_failures_total``), shown on ``/healthz``, and the task is restarted after
a short pause.  More than ``max_restarts`` failures within ``window_s`` means the fault is not
transient: the supervisor calls ``on_fatal`` and the gateway stops with a non-zero exit code, so an
orchestrator restarts the process instead of leaving it half alive.

:class:`RestartPolicy` is the decision (pure); :class:`Supervisor` is the asyncio shell around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from base.logs import get_logger
from ws_gateway import metrics as m

log = get_logger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_s: float = 0.2

    def after_failure(self, failures: list[float], now: float) -> tuple[list[float], bool]:
        """The failure times still inside the window (including ``now``), and whether to restart."""
        recent = [t for t in failures if now - t < self.window_s] + [now]
        return recent, len(recent) <= self.max_restarts


@dataclass
class TaskHealth:
    running: bool = False
    failures: int = 0
    last_error: str | None = None
    last_failure: float | None = None  # monotonic
    gave_up: bool = False

    def as_dict(self, now: float) -> dict[str, Any]:
        return {"running": self.running, "failures": self.failures, "last_error": self.last_error,
                "seconds_since_failure": None if self.last_failure is None else round(now - self.last_failure, 1),
                "gave_up": self.gave_up}


@dataclass
class Supervisor:
    policy: RestartPolicy
    on_fatal: Callable[[str, BaseException], None]
    tasks: dict[str, TaskHealth] = field(default_factory=dict)
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def start(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body()`` (a coroutine that should run until cancelled) under supervision."""
        self.tasks[name] = TaskHealth()
        self._running[name] = asyncio.create_task(self._supervise(name, body), name=f"gateway-{name}")

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        health = self.tasks[name]
        failures: list[float] = []
        while True:
            health.running = True
            try:
                await body()
                raise RuntimeError(f"background task {name} returned; it must run until cancelled")
            except asyncio.CancelledError:
                health.running = False
                raise
            except Exception as exc:  # every failure: logged with traceback, counted, visible on /healthz
                health.running = False
                now = time.monotonic()
                health.failures += 1
                health.last_error = f"{type(exc).__name__}: {exc}"[:500]
                health.last_failure = now
                m.TASK_FAILURES.labels(name).inc()
                failures, restart = self.policy.after_failure(failures, now)
                if not restart:
                    health.gave_up = True
                    log.error("gateway_task_gave_up", task=name, failures=len(failures), error=health.last_error)
                    self.on_fatal(name, exc)
                    return
                log.exception("gateway_task_failed_restarting", task=name, error=health.last_error)
                await asyncio.sleep(self.policy.backoff_s)

    def degraded(self, now: float) -> bool:
        """A task failed within the policy window (it was restarted and may fail again)."""
        return any(h.last_failure is not None and now - h.last_failure < self.policy.window_s
                   for h in self.tasks.values())

    def failed(self) -> bool:
        return any(h.gave_up for h in self.tasks.values())

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
