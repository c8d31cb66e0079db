"""``run_job()``: the process around one runner -- signals, GC tuning, the Prometheus endpoint.

Every job process looks the same to an operator: it logs ``<job>_starting`` and ``<job>_stopped``
with its statistics, serves ``/metrics`` (the runner's and the gate's counters, exported at scrape
time under ``lc_<job>_*``), and stops cleanly on SIGTERM or SIGINT (commits what is open, leaves the
group).  A busy metrics port is logged and does not stop the job.
"""

from __future__ import annotations

import gc
import signal
from collections import Counter
from collections.abc import Mapping

from base.logs import get_logger
from base.metrics import export_stats, serve_metrics
from base.settings import Settings
from streams.runtime.runner import Runner

log = get_logger(__name__)


class _RunnerStats(Mapping[str, float]):
    """The runner's and the gate's tallies as one read-only mapping (read at scrape time)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _merged(self) -> Counter[str]:
        merged = Counter(self.runner.stats)
        if self.runner.gate is not None:
            merged.update(self.runner.gate.stats)
        return merged

    def __getitem__(self, key: str) -> float:
        return self._merged()[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())


def run_job(
    settings: Settings, runner: Runner, web_port: int, gc_threshold: tuple[int, int, int] | None = None
) -> int:
    """Run ``runner`` until SIGTERM/SIGINT; Prometheus /metrics on ``web_port`` (0 disables it)."""
    name = runner.job.name
    if gc_threshold is not None:
        gc.set_threshold(*gc_threshold)
    export_stats(f"lc_{name.replace('-', '_')}", _RunnerStats(runner), f"The {name} job's statistics")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop_event.set())
    try:
        serve_metrics(web_port)
    except OSError as exc:  # a busy port must not stop the job
        log.warning(f"{name}_metrics_unavailable", port=web_port, error=str(exc))
    log.info(f"{name}_starting", worker=runner.worker_id, bootstrap=settings.kafka_bootstrap)
    runner.run()
    log.info(f"{name}_stopped", worker=runner.worker_id, **dict(_RunnerStats(runner)))
    return 0
