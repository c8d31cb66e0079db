"""``livecommerce worker JOB``: run one stream-processing job (one consumer group) in this process."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from base.settings import Settings

HELP = "Run a stream worker: flash-sale, counters, console, sentiment or sink."

JOBS = ("console", "counters", "flash-sale", "sentiment", "sink")


def _runner_of(job: str) -> Callable[[Settings, str, int], int]:
    """The job's ``run_worker(settings, worker_id, web_port)``, imported only when it is run."""
    if job == "flash-sale":
        from streams.flash_sale.job import run_worker
    elif job == "counters":
        from streams.counters.job import run_worker
    elif job == "console":
        from streams.counters.console_job import run_worker
    elif job == "sink":
        return _sink_with_reports
    else:
        from streams.sentiment.worker import run_worker
    return run_worker


def _sink_with_reports(settings: Settings, worker_id: str, web_port: int) -> int:
    """The sink, which owns the store, also writes the reports of ended streams (the stream layer may
    not import analytics, so they are put together here)."""
    from analytics.autoreport import stream_reports
    from base.metrics import export_stats
    from streams.sink.job import run_worker

    hook = stream_reports(settings)
    if hook is not None:
        export_stats("lc_reports", hook.stats, "Reports of ended streams written by the sink")
    return run_worker(settings, worker_id, web_port, on_caught_up=hook)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", choices=sorted(JOBS), help="which job to run")
    parser.add_argument("--worker-id", default="1", help="distinguishes workers of one job (logs, state dirs)")
    parser.add_argument(
        "--web-port", type=int, default=None,
        help="Faust web port of this worker (default LC_WORKER_WEB_PORT; each worker needs its own)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    web_port = settings.worker_web_port if args.web_port is None else args.web_port
    return int(_runner_of(args.job)(settings, args.worker_id, web_port))
