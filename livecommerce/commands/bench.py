"""``livecommerce bench NAME [--json] [...]``: run one benchmark from ``bench/``.

Each benchmark is a module ``bench/<name>.py`` (dashes become underscores) with ``main(argv) -> int``
that runs against real components and prints one JSON object as its last line with ``--json``.
"""

from __future__ import annotations

import argparse
import importlib

from base.settings import Settings

HELP = "Run a benchmark (pipeline, flash-sale, sentiment, gateway, report); --json prints one JSON line."

BENCHES = ["pipeline", "flash-sale", "sentiment", "gateway", "report"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=BENCHES, help="which benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the benchmark (e.g. --json)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        module = importlib.import_module(f"bench.{args.name.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{args.name.replace('-', '_')}":
            print(f"benchmark {args.name!r} is not implemented yet")
            return 2
        raise
    return int(module.main(list(args.rest)) or 0)
