"""``livecommerce worker JOB``: run one stream-processing job (one consumer group) in this process."""

from __future__ import annotations

import argparse
import importlib

from base.settings import Settings

HELP = "Run a stream worker: flash-sale, counters, sentiment or sink."

#: Job name -> module exposing ``run_worker(settings, worker_id, web_port) -> int``.
JOBS = {
    "flash-sale": "streams.flash_sale.worker",
    "counters": "streams.counters.worker",
    "sentiment": "streams.sentiment.worker",
    "sink": "streams.sink.worker",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", choices=sorted(JOBS), help="which job to run")
    parser.add_argument("--worker-id", default="1", help="distinguishes workers of one job (logs, state dirs)")
    parser.add_argument(
        "--web-port", type=int, default=None,
        help="Faust web port of this worker (default LC_WORKER_WEB_PORT; each worker needs its own)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    module = importlib.import_module(JOBS[args.job])
    web_port = settings.worker_web_port if args.web_port is None else args.web_port
    return int(module.run_worker(settings, worker_id=args.worker_id, web_port=web_port))
