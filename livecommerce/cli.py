"""The ``livecommerce`` console command.

Each subcommand is a small module in :mod:`livecommerce.commands` exposing ``HELP``,
``add_arguments(parser)`` and ``run(args, settings) -> int``.  Modules import their heavy
dependencies inside ``run`` so that ``livecommerce --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from base.settings import Settings
from livecommerce.commands import (
    bench,
    benchmark,
    demo,
    down,
    gateway,
    migrate,
    reconcile,
    report,
    sentiment,
    simulate,
    status,
    token,
    topics,
    up,
    watch,
    worker,
)

#: Subcommands in the order ``--help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    "up": up, "down": down, "status": status, "topics": topics, "simulate": simulate, "migrate": migrate,
    "reconcile": reconcile, "watch": watch, "worker": worker, "gateway": gateway, "token": token,
    "sentiment": sentiment, "report": report, "benchmark": benchmark, "bench": bench, "demo": demo,
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="livecommerce",
        description="Live-stream commerce event processing. Settings come from LC_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
    return parser, dict(COMMANDS)


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
