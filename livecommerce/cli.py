"""The ``livecommerce`` console command.

Each subcommand is a small module in :mod:`livecommerce.commands` exposing ``HELP``,
``add_arguments(parser)`` and ``run(args, settings) -> int``.  Modules import their heavy
dependencies inside ``run`` so that ``livecommerce --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from base.settings import Settings

#: Subcommands in the order ``--help`` lists them. A module listed here that does not exist yet is skipped.
COMMANDS = [
    "up", "down", "status", "topics", "simulate", "migrate", "reconcile", "watch",
    "worker", "gateway", "token", "sentiment", "report", "benchmark", "bench", "demo",
]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="livecommerce",
        description="Live-stream commerce event processing. Settings come from LC_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"livecommerce.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"livecommerce.commands.{name}":
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from base.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings)
    return int(modules[args.command].run(args, settings) or 0)  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
