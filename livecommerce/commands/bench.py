"""``livecommerce bench NAME [--json] [...]``: run one benchmark from ``bench/``.

Each benchmark is a module ``bench/<name>.py`` (dashes become underscores) with ``main(argv) -> int``
that runs against real components and prints one JSON object as its last line with ``--json``.
"""

from __future__ import annotations

import argparse

from base.settings import Settings

HELP = "Run a benchmark (pipeline, flash-sale, sentiment, gateway, report, e2e); --json prints one JSON line."

BENCHES = ["pipeline", "flash-sale", "sentiment", "gateway", "report", "e2e"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=BENCHES, help="which benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the benchmark (e.g. --json)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    rest = list(args.rest)
    if args.name == "pipeline":
        from bench.pipeline import main
    elif args.name == "flash-sale":
        from bench.flash_sale import main
    elif args.name == "sentiment":
        from bench.sentiment import main
    elif args.name == "gateway":
        from bench.gateway import main
    elif args.name == "e2e":
        from bench.e2e import main
    else:
        from bench.report import main
    return int(main(rest) or 0)
