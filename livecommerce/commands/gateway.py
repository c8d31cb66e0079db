"""``livecommerce gateway``: run the websocket gateway and dashboard (one process, one event loop)."""

from __future__ import annotations

import argparse
from typing import TypeVar

from base.settings import Settings

T = TypeVar("T")

HELP = "Run the websocket gateway: dashboard at /, websocket at /ws?token=..., /healthz, /metrics."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default LC_GATEWAY_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port, 0 picks a free one (default LC_GATEWAY_PORT)")
    parser.add_argument("--instance-id", default="", help="names this gateway (Kafka group, sequence epoch)")
    parser.add_argument(
        "--origin", action="append", default=[], help="extra allowed Origin (repeatable; adds to LC_GATEWAY_ORIGINS)"
    )
    parser.add_argument(
        "--flush-interval", type=float, default=None, help="seconds between room updates (LC_GATEWAY_FLUSH_INTERVAL_S)"
    )
    parser.add_argument(
        "--like-interval", type=float, default=None, help="seconds likes are summed (LC_GATEWAY_LIKE_INTERVAL_S)"
    )
    parser.add_argument(
        "--action-rate", type=float, default=None, help="actions/s per connection (LC_GATEWAY_ACTION_RATE)"
    )
    parser.add_argument(
        "--action-burst", type=int, default=None, help="action burst per connection (LC_GATEWAY_ACTION_BURST)"
    )
    parser.add_argument(
        "--buffer-high-water", type=int, default=None, help="bytes: client is behind (LC_GATEWAY_BUFFER_HIGH_WATER)"
    )
    parser.add_argument(
        "--buffer-limit", type=int, default=None, help="bytes: client is dropped (LC_GATEWAY_BUFFER_LIMIT)"
    )
    parser.add_argument(
        "--max-behind", type=float, default=None, help="seconds behind before a drop (LC_GATEWAY_MAX_BEHIND_S)"
    )
    parser.add_argument(
        "--max-sockets-per-user", type=int, default=None,
        help="open connections per user (LC_GATEWAY_MAX_SOCKETS_PER_USER)",
    )
    parser.add_argument(
        "--strike-burst", type=int, default=None, help="invalid frames per user before 4009 (LC_GATEWAY_STRIKE_BURST)"
    )
    parser.add_argument(
        "--dedupe-window", type=float, default=None,
        help="seconds client event_ids are kept (LC_GATEWAY_DEDUPE_WINDOW_S)",
    )
    parser.add_argument("--control-rate", type=float, default=0.5, help="subscribe/renew frames per second per user")
    parser.add_argument("--control-burst", type=int, default=10, help="subscribe/renew burst per user")
    parser.add_argument(
        "--produce-timeout-ms", type=int, default=30_000,
        help="an action not in Kafka by then is answered with an error",
    )
    parser.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF per client socket (0: kernel default)")
    parser.add_argument("--lookback", type=float, default=120.0, help="seconds of output topics read at start")
    parser.add_argument("--port-file", default=None, help="write the bound port here once listening")


def _given(flag: T | None, setting: T) -> T:
    """A command-line flag overrides the setting from the environment."""
    return setting if flag is None else flag


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import gc
    import resource
    import signal
    from pathlib import Path

    from base.logs import get_logger
    from ws_gateway.config import GatewayConfig
    from ws_gateway.server import Gateway, GatewayFailed

    # Thousands of long-lived connections make every full collection long: collect young objects less
    # often and move what start-up created out of the collector's way (a precaution; not measured apart).
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # every websocket client is a file descriptor
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    config = GatewayConfig(
        host=args.host or settings.gateway_host,
        port=settings.gateway_port if args.port is None else args.port,
        jwt_secret=settings.jwt_secret,
        origins=tuple(o.strip() for o in settings.gateway_origins.split(",") if o.strip()) + tuple(args.origin),
        max_message_bytes=settings.max_message_bytes,
        flush_interval_s=_given(args.flush_interval, settings.gateway_flush_interval_s),
        like_interval_s=_given(args.like_interval, settings.gateway_like_interval_s),
        action_rate_per_s=_given(args.action_rate, settings.gateway_action_rate),
        action_burst=_given(args.action_burst, settings.gateway_action_burst),
        max_sockets_per_user=_given(args.max_sockets_per_user, settings.gateway_max_sockets_per_user),
        strike_burst=_given(args.strike_burst, settings.gateway_strike_burst),
        dedupe_window_s=_given(args.dedupe_window, settings.gateway_dedupe_window_s),
        control_rate_per_s=args.control_rate,
        control_burst=args.control_burst,
        produce_timeout_ms=args.produce_timeout_ms,
        buffer_high_water=_given(args.buffer_high_water, settings.gateway_buffer_high_water),
        buffer_limit=_given(args.buffer_limit, settings.gateway_buffer_limit),
        max_behind_s=_given(args.max_behind, settings.gateway_max_behind_s),
        socket_send_buffer=args.sndbuf,
        lookback_s=args.lookback,
        instance_id=args.instance_id,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_stop)
        ready: asyncio.Future[int] = loop.create_future()
        gateway = Gateway(settings, config)
        task = asyncio.create_task(gateway.run(stop, ready))
        port = await asyncio.wait_for(asyncio.shield(ready), timeout=30)
        if args.port_file:
            tmp = Path(args.port_file + ".tmp")
            tmp.write_text(f"{port}\n")
            tmp.replace(args.port_file)
        await task

    try:
        asyncio.run(main())
    except GatewayFailed as exc:  # already logged by the supervisor; the exit code tells the orchestrator
        get_logger(__name__).error("gateway_failed", error=str(exc))
        return 1
    return 0
