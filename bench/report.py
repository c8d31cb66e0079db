"""``livecommerce bench report [--events N] [--json]``: a 2-hour stream of N events, then the report.

1. A child process creates a fresh embedded store (temp dir) and fills it INSIDE the engine with
   ``INSERT ... SELECT`` over ``numbers()`` (Python loops would take minutes for 10 M rows), one
   1 M-row chunk at a time behind a progress bar (on stderr): the stream (N rows over all raw tables) and a
   previous stream of the same room a day earlier (``--previous-share`` of N) for the comparison.
   Viewer ids look like pseudonyms (``p_`` + 16 hex digits), as the sink stores them.
2. The child exits (an embedded store opens in one process at a time), then ``livecommerce report``
   runs as its own process, exactly as an operator would run it, writing HTML and CSVs.
   ``report_s`` is that command's wall time, process start included.

The last line with ``--json``: ``{"events": rows in the store, "report_s": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from base.settings import REPO_ROOT

ROOM = "bench-room"
DURATION_MS = 2 * 3600 * 1000
START_MS = 1_767_229_200_000  # 2026-01-01T01:00:00Z
CHUNK = 1_000_000
SKUS = 20

#: Share of the stream's rows per table; likes take whatever is left so the total is exact.
SHARES = {"presence": 0.10, "comments": 0.22, "scored_comments": 0.22, "orders": 0.05, "stock_updates": 0.01}

TEXTS = [
    "yyds", "666 主播太会了", "上链接", "绝绝子🔥", "已拍 冲冲冲", "太贵了吧", "质量好差 要退货", "抢不到 垃圾",
    "主播好美", "这个颜色绝了", "发货太慢了", "sold out already?? scam", "love this bag 😍", "link pls",
    "是真皮吗", "什么时候返场", "take my money 💸", "客服不回消息 😡", "性价比绝了", "又没抢到 😭",
]


def _user(expr: str, users: int, prefix: str) -> str:
    return f"concat('p_', lower(hex(cityHash64('{prefix}', ({expr}) % {users}))))"


def _ts(offset_ms: str, start: int) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({start} + ({offset_ms})))"


def statements(n: int, start: int, prefix: str) -> list[tuple[str, int, str]]:
    """(table, rows, INSERT ... SELECT with ``{lo}``/``{hi}`` number bounds) of one stream of ``n`` rows."""
    users = max(1000, n // 50)
    counts = {t: int(n * s) for t, s in SHARES.items()}
    orders = counts["orders"]
    # Per order: accepted 40 % (then paid 70 %, cancelled 10 %, expired 20 %), else rejected.
    accepted = f"cityHash64('{prefix}a', number) % 10 < 4"
    fate = f"cityHash64('{prefix}f', number) % 10"
    results_rows = orders + int(orders * 0.4)
    payments = int(orders * 0.4 * 0.8)
    fixed = sum(counts.values()) + results_rows + payments + 2 * SKUS + 500
    counts["likes"] = max(0, n - fixed)
    d, t = DURATION_MS, start
    join_off = f"(cityHash64('{prefix}j', u) % {int(d * 0.9)})"
    leave_off = f"({join_off} + cityHash64('{prefix}l', u) % ({d} - {join_off}))"
    texts = "[" + ", ".join("'" + x.replace("'", "''") + "'" for x in TEXTS) + "]"
    spread = "intDiv(number * {span}, {rows}) + cityHash64('{p}s', number) % 997"
    out: list[tuple[str, int, str]] = []
    p = counts["presence"]
    out.append(("presence", p, (
        # columns named: joins carry no traffic source here (they are NULL, as from an older client)
        "INSERT INTO {db}.presence (v, event_id, room_id, user_id, action, ts) "
        "SELECT 1, concat('" + prefix + "p', toString(number)), '" + ROOM + "', "
        + _user("u", users, prefix) + ", multiIf(number < " + str(users) + ", 'join', number < " + str(2 * users)
        + ", 'leave', 'heartbeat'), "
        + _ts(f"multiIf(number < {users}, {join_off}, number < {2 * users}, {leave_off}, "
              f"{join_off} + cityHash64('{prefix}h', number) % greatest(1, {leave_off} - {join_off}))", t)
        + " FROM (SELECT number, if(number < " + str(2 * users) + ", number % " + str(users) + ", number % "
        + str(users) + ") AS u FROM numbers({lo}, {n})) "
    )))
    for table, rows in (("comments", counts["comments"]), ("scored_comments", counts["scored_comments"])):
        text = (f"if(cityHash64('{prefix}x', number) % 10 < 3, concat(arrayElement({texts}, 1 + cityHash64('{prefix}t',"
                f" number) % {len(TEXTS)}), ' ', toString(cityHash64('{prefix}n', number) % 5000)), "
                f"arrayElement({texts}, 1 + cityHash64('{prefix}t', number) % {len(TEXTS)}))")
        score = f"(toFloat64(cityHash64('{prefix}sc', number) % 2001) - 1000) / 1000"
        extra = (f", multiIf({score} > 0.3, 'positive', {score} < -0.3, 'negative', 'neutral'), {score}, 0.9"
                 if table == "scored_comments" else "")
        out.append((table, rows, (
            f"INSERT INTO {{db}}.{table} SELECT 1, concat('{prefix}c', toString(number)), '{ROOM}', "
            f"{_user('number', users, prefix)}, {text}{extra}, "
            f"{_ts(spread.format(span=d, rows=rows, p=prefix), t)} FROM numbers({{lo}}, {{n}})"
        )))
    out.append(("likes", counts["likes"], (
        f"INSERT INTO {{db}}.likes SELECT 1, concat('{prefix}l', toString(number)), '{ROOM}', "
        f"{_user('number', users, prefix)}, 1 + cityHash64('{prefix}k', number) % 10, "
        f"{_ts(spread.format(span=d, rows=counts['likes'], p=prefix), t)} FROM numbers({{lo}}, {{n}})"
    )))
    sku = f"concat('{prefix}sku', toString(cityHash64('{prefix}k', number) % {SKUS}))"
    order_ts = _ts(spread.format(span=d, rows=orders, p=prefix), t)
    out.append(("orders", orders, (
        f"INSERT INTO {{db}}.orders SELECT 1, concat('{prefix}o', toString(number)), '{ROOM}', {sku}, "
        f"{_user('number * 7', users, prefix)}, 1 + number % 3, {order_ts} FROM numbers({{lo}}, {{n}})"
    )))
    price = f"990 + 1000 * (cityHash64('{prefix}k', number) % {SKUS})"
    result_ts = _ts(spread.format(span=d, rows=orders, p=prefix) + " + 1000 * (st != 'accepted')", t)
    final = f"multiIf({fate} < 7, 'paid', {fate} < 8, 'cancelled', 'expired')"
    out.append(("order_results", orders, (
        f"INSERT INTO {{db}}.order_results SELECT 1, concat('{prefix}o', toString(number)), '{ROOM}', {sku}, "
        f"{_user('number * 7', users, prefix)}, st, if(st = 'rejected', multiIf(number % 3 = 0, 'sold_out', "
        f"number % 3 = 1, 'user_limit', 'ended'), NULL), 1 + number % 3, {price}, NULL, {order_ts}, "
        f"{result_ts} "
        f"FROM numbers({{lo}}, {{n}}) ARRAY JOIN if({accepted}, ['accepted', {final}], ['rejected']) AS st"
    )))
    out.append(("payments", orders, (
        f"INSERT INTO {{db}}.payments SELECT 1, concat('{prefix}y', toString(number)), "
        f"concat('{prefix}o', toString(number)), '{ROOM}', {sku}, {_user('number * 7', users, prefix)}, "
        f"if({fate} < 7, 'paid', 'cancelled'), {order_ts} FROM numbers({{lo}}, {{n}}) "
        f"WHERE {accepted} AND {fate} < 8"
    )))
    stock = counts["stock_updates"]
    out.append(("stock_updates", stock, (
        f"INSERT INTO {{db}}.stock_updates SELECT 1, '{ROOM}', concat('{prefix}sku', toString(number % {SKUS})), "
        f"greatest(0, 1000 - toInt64(intDiv(number, {SKUS}))), 0, least(1000, intDiv(number, {SKUS})), 1000, 990, "
        f"{_ts(spread.format(span=d, rows=stock, p=prefix), t)} FROM numbers({{lo}}, {{n}})"
    )))
    out.append(("sale_config", 2 * SKUS, (
        f"INSERT INTO {{db}}.sale_config SELECT 1, concat('{prefix}s', toString(number)), '{ROOM}', "
        f"concat('{prefix}sku', toString(number % {SKUS})), if(number < {SKUS}, 'open', 'close'), "
        f"if(number < {SKUS}, 1000, NULL), if(number < {SKUS}, 990 + 1000 * (number % {SKUS}), NULL), "
        f"if(number < {SKUS}, {_ts(str(d // 10), t)}, NULL), if(number < {SKUS}, {_ts(str(d - 1), t)}, NULL), "
        f"1, 300, concat('SKU ', toString(number % {SKUS})), {_ts(f'if(number < {SKUS}, 1000, {d} - 1)', t)} "
        f"FROM numbers({{lo}}, {{n}})"
    )))
    out.append(("alerts", 500, (
        f"INSERT INTO {{db}}.alerts SELECT 1, concat('{prefix}a', toString(number)), '{ROOM}', "
        f"if(number % 2 = 0, 'rejections_sold_out', 'rejections_rate_limited'), "
        f"if(number % 2 = 0, 'info', 'warning'), concat('rejection spike #', toString(number)), 100, 100, "
        f"{_ts(spread.format(span=d, rows=500, p=prefix), t)} FROM numbers({{lo}}, {{n}})"
    )))
    return out


def load(path: str, events: int, previous_share: float, quiet: bool) -> int:
    """Fill a fresh store at ``path``; returns the rows stored."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from warehouse.client import DEFAULT_DATABASE, get_client
    from warehouse.migrate import migrate, render

    started = time.monotonic()
    client = get_client(f"chdb://{path}")
    migrate(client, DEFAULT_DATABASE)
    db = render("{db}", DEFAULT_DATABASE)
    plan = statements(events, START_MS, "cur")
    if previous_share > 0:
        plan += statements(int(events * previous_share), START_MS - 86_400_000, "prev")
    total = sum(rows for _, rows, _ in plan)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=quiet, transient=False) as progress:
        task = progress.add_task("loading rows", total=total)
        for table, rows, sql in plan:
            progress.update(task, description=f"loading {table:<16}")
            for lo in range(0, rows, CHUNK):
                client.command(sql.format(db=db, lo=lo, n=min(CHUNK, rows - lo)))
                progress.advance(task, min(CHUNK, rows - lo))
    stored = 0
    for table in {t for t, _, _ in plan}:
        stored += int(client.query(f"SELECT count() FROM {db}.{table}").result_rows[0][0])
    if not quiet:
        print(f"loaded {stored:,} rows in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return stored


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livecommerce bench report", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="rows of the reported stream (default 10 M)")
    parser.add_argument("--previous-share", type=float, default=0.1,
                        help="size of the previous stream as a share of --events (default 0.1)")
    parser.add_argument("--keep", help="keep the store and report in this directory instead of a temp dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--load-only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_only:  # the child process
        print(json.dumps({"stored": load(args.load_only, args.events, args.previous_share, quiet=False)}))
        return 0
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lc-bench-report-"))
    store = work / "clickhouse"
    try:
        started = time.monotonic()
        child = subprocess.run(
            [sys.executable, "-m", "bench.report", "--events", str(args.events), "--previous-share",
             str(args.previous_share), "--load-only", str(store)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=True,
        )
        stored = json.loads(child.stdout.strip().splitlines()[-1])["stored"]
        load_s = time.monotonic() - started
        env = {**os.environ, "LC_CLICKHOUSE_DSN": f"chdb://{store}", "LC_LOG_FORMAT": "console"}
        load_avg = os.getloadavg()[0]
        cpu_before = _children_cpu_s()
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "livecommerce.cli", "report", "--room", ROOM, "--out", str(work / "report.html"),
             "--csv", str(work / "csv")],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
        )
        report_s = time.monotonic() - started
        report_cpu_s = _children_cpu_s() - cpu_before
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        print(done.stdout.strip())
        result = {
            "bench": "report", "events": stored, "stream_events": args.events, "report_s": round(report_s, 2),
            # CPU seconds the report process used (all its threads): what the wall time approaches on an
            # otherwise idle machine; loadavg_1m tells how contended the machine was when measured.
            "report_cpu_s": round(report_cpu_s, 2), "loadavg_1m": round(load_avg, 1),
            "load_s": round(load_s, 1), "load_rows_per_s": round(stored / load_s), "target_s": 10,
            "html_mb": round((work / "report.html").stat().st_size / 1e6, 2), "cpus": os.cpu_count(),
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{stored:,} rows stored in {load_s:.1f} s; report in {report_s:.2f} s wall, "
                  f"{report_cpu_s:.2f} s CPU (target 10 s; load average {load_avg:.1f} on {os.cpu_count()} CPUs)")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
