"""``livecommerce demo``: Kafka, the workers, the gateway and a simulated live room, all local.

Stops its own processes on Ctrl-C (or after ``--seconds``); the broker keeps running so that the next
demo starts fast — ``livecommerce down`` (or ``make down``) stops it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from base.settings import Settings

HELP = "Run the whole system locally: Kafka, workers, gateway, a simulated live room; prints the dashboard URL."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rooms", type=int, default=2, help="simulated rooms (default 2)")
    parser.add_argument("--viewers", type=int, default=800, help="peak viewers per room (default 800)")
    parser.add_argument("--duration", type=int, default=900, help="simulated stream length, seconds (default 900)")
    parser.add_argument("--seconds", type=float, default=0, help="stop the demo after this long (default: Ctrl-C)")
    parser.add_argument("--no-watch", action="store_true", help="do not show the console counters table")


def _host_token(settings: Settings, room: str) -> str | None:
    """A host token for ``room`` from the gateway's token command, if the gateway is installed."""
    proc = subprocess.run(
        [sys.executable, "-m", "livecommerce.cli", "token", "--role", "host", "--room", room],
        capture_output=True, text=True, env={**settings.as_env()}, check=False,
    )
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from livecommerce.commands import up
    from livecommerce.demo import Stack

    if up.run(argparse.Namespace(timeout=180.0, no_topics=False), settings) != 0:
        return 1
    broker = up.local_broker(settings)
    settings = settings.replace(kafka_bootstrap=broker.bootstrap)
    stack = Stack(settings)
    started = stack.start()
    print("started: " + ", ".join(f"{c.name} (log {c.log})" for c in started))
    seed = int(time.time()) % 100_000
    room = f"s{seed}-room0"
    if any(c.name == "gateway" for c in started):
        token = _host_token(settings, room)
        url = f"http://{settings.gateway_host}:{settings.gateway_port}/"
        print(f"\n  Dashboard: {url}?room={room}" + (f"&token={token}" if token else "") + "\n")
    simulate = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.cli", "simulate", "--rooms", str(args.rooms),
         "--viewers", str(args.viewers), "--duration", str(args.duration), "--speed", "1",
         "--seed", str(seed), "--invalid-share", "0.002"],
        env={**settings.as_env(), "LC_LOG_FORMAT": "console"},
        stdout=subprocess.DEVNULL if not args.no_watch else None,
    )
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        if not args.no_watch:
            from livecommerce.commands import watch

            watch.run(argparse.Namespace(seconds=args.seconds), settings)  # returns on Ctrl-C or --seconds
            return 0
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
            if simulate.poll() is not None and deadline is None:
                print("simulated stream finished; Ctrl-C stops the demo")
                deadline = float("inf")
            for child in stack.dead():
                print(f"{child.name} exited with {child.process.returncode}; see {child.log}")  # type: ignore[union-attr]
                stack.children.remove(child)
    except KeyboardInterrupt:
        pass
    finally:
        if simulate.poll() is None:
            simulate.terminate()
            simulate.wait(10)
        stack.stop()
        print("demo stopped; Kafka keeps running (`livecommerce down` stops it)")
    return 0
