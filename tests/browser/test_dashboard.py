"""The streamer's dashboard in real headless Chromium against the running stack.

Stack: the session's Kafka broker, the counters and flash-sale workers (``livecommerce worker``), the
gateway, and the simulator sending a live room in real time.  The test opens the dashboard with a host
token, watches the counters change as simulated events flow, opens a flash sale of its own SKU in the
simulated room, places an order as a viewer through the gateway, and waits until the flash-sale
worker's answer shows in the page's stock bar.  A screenshot goes to ``artifacts/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from base.settings import REPO_ROOT, Settings
from schemas import TOPICS, SaleConfig, ScoredComment, encode
from tests.fixtures.kafka import free_ports
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOM = "s7-room0"  # the simulator's first room for --seed 7
WAIT_MS = 90_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture
def stack(kafka_settings: Settings, tmp_path: Path) -> Iterator[GatewayProcess]:
    """Workers, gateway and a real-time simulated room on the test's topics; all stopped by PID afterwards."""
    env = {**os.environ, **kafka_settings.as_env(), "LC_LOG_FORMAT": "console"}
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, *args: str) -> None:
        with (tmp_path / f"{name}.log").open("ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "livecommerce.cli", *args], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    counters_port, flash_port = free_ports(2)
    try:
        spawn("counters", "worker", "counters", "--worker-id", "b1", "--web-port", str(counters_port))
        spawn("flash-sale", "worker", "flash-sale", "--worker-id", "b1", "--web-port", str(flash_port))
        with GatewayProcess(kafka_settings, log_path=tmp_path / "gateway.log") as gateway:
            spawn("simulate", "simulate", "--rooms", "1", "--seed", "7", "--duration", "600", "--viewers", "300",
                  "--comment-rate", "6", "--speed", "1", "--json")
            yield gateway
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _produce(settings: Settings, topic: str, *events: Any) -> None:
    from base.kafka import make_producer

    producer = make_producer(settings)
    for event in events:
        producer.produce(settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event))
    assert producer.flush(30) == 0


async def _order_as_viewer(gateway: GatewayProcess, settings: Settings, sku: str, quantity: int) -> dict[str, Any]:
    """A viewer orders through the gateway and gets the flash-sale worker's answer on its connection."""
    from websockets.asyncio.client import connect

    tok = mint_token(settings.jwt_secret, sub="browser-buyer", role="viewer", room=ROOM, now_s=int(time.time()))
    async with connect(f"{gateway.ws_url}?token={tok}", open_timeout=60) as ws:
        await ws.send('{"type":"subscribe"}')
        frame = {"type": "order", "order_id": "browser-order-1", "sku_id": sku, "quantity": quantity}
        await ws.send(orjson.dumps(frame).decode())
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if message["type"] == "order_result":
                return dict(message)
    raise AssertionError("no order result reached the viewer")


def test_dashboard_shows_live_counters_and_an_accepted_order_in_the_stock_bar(
    stack: GatewayProcess, kafka_settings: Settings
) -> None:
    from playwright.sync_api import sync_playwright

    s = kafka_settings
    host_token = mint_token(s.jwt_secret, sub="host-browser", role="host", room=ROOM, now_s=int(time.time()))
    artifacts = REPO_ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{stack.url}/?token={host_token}")
            page.wait_for_function("window.__lc && window.__lc.snapshots >= 1", timeout=WAIT_MS)
            assert page.title().startswith("livecommerce")
            assert page.text_content("#room") == ROOM
            # counters change as the simulated room's events flow through the counters worker
            page.wait_for_function("window.__lc.counters && window.__lc.counters.comments_total > 0",
                                   timeout=WAIT_MS)
            first = int((page.text_content("#comments-total") or "0").replace(",", ""))
            page.wait_for_function(
                f"window.__lc.counters.comments_total > {first} && window.__lc.updates >= 2", timeout=WAIT_MS)
            assert int((page.text_content("#comments-total") or "0").replace(",", "")) > first
            assert page.text_content("#online") not in ("–", "")
            # a flash sale of the test's own SKU in the simulated room, then a viewer's order through the gateway
            now = int(time.time() * 1000)
            _produce(s, "sale-config", SaleConfig(
                event_id="browser-sale", room_id=ROOM, sku_id="sku-browser", action="open", stock=5,
                price_cents=19900, starts_at=now - 1000, ends_at=now + 600_000, per_user_limit=3, ts=now))
            page.wait_for_selector('[data-sku="sku-browser"][data-available="5"]', timeout=WAIT_MS)
            with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
                result = pool.submit(asyncio.run, _order_as_viewer(stack, s, "sku-browser", 2)).result()
            assert result["status"] == "accepted", result
            bar = page.wait_for_selector('[data-sku="sku-browser"][data-reserved="2"]', timeout=WAIT_MS)
            assert bar is not None and bar.get_attribute("data-available") == "3"
            reserved_width = page.eval_on_selector('[data-sku="sku-browser"] .reserved', "e => e.style.width")
            assert reserved_width == "40%"
            # comments coloured by sentiment (this stack runs no sentiment model: the test scores two itself)
            _produce(s, "scored-comments", *(
                ScoredComment(event_id=f"bc{i}", room_id=ROOM, user_id=f"fan{i}", text=text, label=label,
                              score=score, confidence=0.9, ts=int(time.time() * 1000))
                for i, (text, label, score) in enumerate([("太好看了 yyds 🔥", "positive", 0.9),
                                                          ("发货太慢了", "negative", -0.7)])))
            page.wait_for_selector("#comments li.negative", timeout=WAIT_MS)
            assert page.locator("#comments li.positive").count() >= 1
            page.wait_for_timeout(1500)  # let the sparklines gather a few more points for the picture
            page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
        finally:
            with contextlib.suppress(Exception):
                browser.close()
