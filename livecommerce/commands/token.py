"""``livecommerce token``: mint a gateway JWT (host, viewer or ops) signed with LC_JWT_SECRET."""

from __future__ import annotations

import argparse

from base.settings import Settings

HELP = "Mint a gateway token: --role host|viewer|ops --room ROOM [--sub ID] [--ttl SECONDS] [--url]."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=["host", "viewer", "ops"], default="host")
    parser.add_argument("--room", default=None, help="room of a host or viewer token (ops: optional)")
    parser.add_argument("--sub", default=None, help="user id (default: <role>-<room>)")
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until the token expires")
    parser.add_argument("--url", action="store_true", help="print the dashboard URL with the token instead")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from ws_gateway.auth import mint_token

    if args.room is None and args.role != "ops":
        print(f"a {args.role} token needs --room")
        return 2
    sub = args.sub or f"{args.role}-{args.room or 'all'}"
    token = mint_token(settings.jwt_secret, sub=sub, role=args.role, room=args.room, now_s=int(time.time()),
                       ttl_s=args.ttl)
    if args.url:
        print(f"http://{settings.gateway_host}:{settings.gateway_port}/?token={token}")
    else:
        print(token)
    return 0
