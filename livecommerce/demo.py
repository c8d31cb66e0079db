"""The local stack of ``livecommerce demo``: which processes run, on which ports, and how they stop.

Each job is its own OS process (as in production): one consumer group each, its own metrics port, its
own log file under ``<LC_DATA_DIR>/logs``.  The embedded ClickHouse can be opened by one process only,
so exactly one process — the sink — owns it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from base.settings import Settings

#: Jobs started by the demo, in start order (the sink first: it migrates the warehouse).
DEMO_JOBS = ("sink", "flash-sale", "counters", "sentiment", "console")


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Stack:
    """The demo's child processes; ``stop()`` ends every one of them (TERM, then KILL)."""

    settings: Settings
    children: list[Child] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return Path(self.settings.data_dir) / "logs"

    def plan(self) -> list[Child]:
        """The processes to start: every worker job, then the gateway."""
        base_env = {**os.environ, **self.settings.as_env()}
        planned: list[Child] = []
        cli = [sys.executable, "-m", "livecommerce.cli"]
        for i, job in enumerate(DEMO_JOBS):
            # each worker serves /metrics on its own --web-port; the gateway on the gateway port
            planned.append(Child(job, [*cli, "worker", job, "--web-port", str(self.settings.worker_web_port + i)],
                                 self.log_dir / f"{job}.log", base_env))
        planned.append(Child("gateway", [*cli, "gateway"], self.log_dir / "gateway.log", base_env))
        return planned

    def start(self) -> list[Child]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.plan():
            out = child.log.open("ab")
            child.process = subprocess.Popen(
                child.argv, stdout=out, stderr=subprocess.STDOUT, env=child.env, start_new_session=True
            )
            out.close()
            self.children.append(child)
        return self.children

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        for child in self.children:
            if child.process and child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
