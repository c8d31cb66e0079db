"""``livecommerce status``: is the local broker running and answering, and which topics does it hold.

Exit status follows the LSB convention so scripts can test it: 0 running and answering, 1 running but
not answering (starting, or wedged), 3 not running.
"""

from __future__ import annotations

import argparse
import json

from base.settings import Settings

HELP = "Show whether the local Kafka broker runs and answers, and its topics (exit 0 up, 1 not answering, 3 down)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from livecommerce.commands.up import local_broker

    broker = local_broker(settings)
    pid = broker.pid()
    answering = pid is not None and broker.is_answering()
    topics: list[str] = []
    if answering:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
        topics = sorted(t for t in admin.list_topics(timeout=5).topics if t.startswith(settings.topic_prefix))
    code = 0 if answering else (1 if pid is not None else 3)
    state = {0: "running", 1: "not answering", 3: "stopped"}[code]
    if args.json:
        print(json.dumps({
            "state": state, "pid": pid, "bootstrap": broker.bootstrap, "data_dir": str(broker.data_dir),
            "topics": topics,
        }))
    else:
        where = f" on {broker.bootstrap}, data in {broker.data_dir}"
        print(f"Kafka {state}" + (f" (pid {pid})" if pid else "") + where)
        if answering:
            print(f"{len(topics)} topics with prefix {settings.topic_prefix!r}: {', '.join(topics) or '-'}")
    return code
