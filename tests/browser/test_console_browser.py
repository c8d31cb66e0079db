"""The dashboard's streamer console in real headless Chromium against the running stack.

Stack: the session's Kafka broker, the counters, flash-sale and console workers, the gateway, and the
simulator sending a live room in real time.  The test adds its own product to the room (impressions,
clicks, a pin and a sale opened by the host, a viewer's order through the gateway) and a benchmark,
then checks the page: the SKU's funnel row, the markers on every trend chart, the traffic sources, and
the worst headline metric painted red.  A screenshot goes to ``artifacts/console.png``.
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

import pytest

from base.settings import REPO_ROOT, Settings
from schemas import HostAction, ProductClick, ProductImpression, RoomBenchmark, SaleConfig
from tests.browser.test_dashboard import CHROMIUM, CHROMIUM_ARGS, ROOM, WAIT_MS, _order_as_viewer, _produce
from tests.fixtures.kafka import free_ports
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

SKU = "sku-console"
CHARTS = 3  # online, GMV, comments per minute

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

    ports = free_ports(3)
    try:
        for name, port in zip(("counters", "flash-sale", "console"), ports, strict=True):
            spawn(name, "worker", name, "--worker-id", "b1", "--web-port", str(port))
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


def test_console_shows_the_funnel_markers_sources_and_the_worst_metric_in_red(
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
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{stack.url}/?token={host_token}")
            page.wait_for_function("window.__lcConsole && window.__lcConsole.view", timeout=WAIT_MS)
            assert page.locator("section#console").count() == 1

            now = int(time.time() * 1000)
            _produce(s, "host-actions",
                     HostAction(event_id="hb-pin", room_id=ROOM, host_id="host-browser", action="pin", sku_id=SKU,
                                ts=now),
                     HostAction(event_id="hb-open", room_id=ROOM, host_id="host-browser", action="open_sale",
                                sku_id=SKU, stock=5, price_cents=19900, starts_at=now - 1000, ends_at=now + 600_000,
                                title="console test", ts=now))
            _produce(s, "sale-config", SaleConfig(
                event_id="hb-open", room_id=ROOM, sku_id=SKU, action="open", stock=5, price_cents=19900,
                starts_at=now - 1000, ends_at=now + 600_000, per_user_limit=3, ts=now))
            _produce(s, "impressions", *(
                ProductImpression(event_id=f"hb-i{i}", room_id=ROOM, sku_id=SKU, user_id=f"fan{i}",
                                  placement="pinned", ts=now) for i in range(10)))
            _produce(s, "product-clicks", *(
                ProductClick(event_id=f"hb-c{i}", room_id=ROOM, sku_id=SKU, user_id=f"fan{i}",
                             placement="pinned", ts=now) for i in range(4)))
            # a benchmark far above anything this stream reaches: every metric it has is red
            _produce(s, "room-benchmarks", RoomBenchmark(
                room_id=ROOM, streams=5, since=now - 14 * 86_400_000, avg_online=1e6, avg_watch_ms=1e9,
                comments_per_viewer=1e3, ctr=0.9, ts=now))

            row = f'tr[data-sku="{SKU}"]'
            page.wait_for_selector(f'{row} td.impressions:text-is("10")', timeout=WAIT_MS)
            page.wait_for_selector(f'{row} td.clicks:text-is("4")', timeout=WAIT_MS)
            assert page.text_content(f"{row} td.ctr") == "40.0%"
            with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
                result = pool.submit(asyncio.run, _order_as_viewer(stack, s, SKU, 1)).result()
            assert result["status"] == "accepted", result
            page.wait_for_selector(f'{row} td.accepted:text-is("1")', timeout=WAIT_MS)
            assert page.text_content(f"{row} td.attempts") == "1"
            assert page.text_content(f"{row} td.paid") == "0" and page.text_content(f"{row} td.gmv") == "¥0"
            assert page.text_content(f"{row} td.conversion") == "0.0%"

            # the host's actions are markers on every trend chart, and so is the online peak
            page.wait_for_function(
                f"document.querySelectorAll('svg [data-marker=\"online_peak\"]').length === {CHARTS}", timeout=WAIT_MS)
            for kind in ("sale_open", "pin"):
                assert page.locator(f'svg [data-marker="{kind}"]').count() == CHARTS, kind
            kinds = page.eval_on_selector_all("svg [data-marker]", "els => els.map(e => e.dataset.marker)")
            allowed = {"sale_open", "sale_close", "restock", "sold_out", "pin", "unpin", "alert", "online_peak"}
            assert set(kinds) <= allowed

            # the worst metric against the benchmark is red, and only one is marked worst
            worst = page.wait_for_selector(".cons-metric.worst", timeout=WAIT_MS)
            assert worst is not None and "red" in (worst.get_attribute("class") or "")
            assert worst.get_attribute("data-metric") == page.evaluate("window.__lcConsole.view.worst")
            assert page.locator(".cons-metric.worst").count() == 1

            # the simulated audience: entries by traffic source, and the page's state follows the deltas
            page.wait_for_selector("#cons-sources [data-source]", timeout=WAIT_MS)
            page.wait_for_function("window.__lcConsole.updates >= 3", timeout=WAIT_MS)
            view = page.evaluate("window.__lcConsole.view")
            shown = page.eval_on_selector_all(
                "#cons-sources [data-source]",
                "els => Object.fromEntries(els.map(e => [e.dataset.source, e.querySelector('b').textContent]))")
            assert shown == {k: f"{v:,}" for k, v in view["sources"].items()}
            assert view["skus"][SKU][:2] == [10, 4]
            page.wait_for_timeout(1500)
            page.screenshot(path=str(artifacts / "console.png"), full_page=True)
        finally:
            with contextlib.suppress(Exception):
                browser.close()
