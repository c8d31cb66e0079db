"""Issue 12's browser test: the host's console and the viewer's buy page, both in real headless Chromium, on a
running stack (the session's Kafka broker, the flash-sale and counters workers, the gateway; the console job
too for the marker and CTR test).

1. the host's page pins a product and opens a sale, each through its confirmation step;
2. a viewer's page (``/viewer``) shows the pinned card, buys, sees "accepted" with the hold's countdown, pays;
3. the host's page then shows the order, the stock and each action applied; with the console job running
   (``livecommerce worker console``, rendered by ``console.js``) also the sale-open marker and the per-SKU CTR.

Screenshots: ``artifacts/console-host.png`` and ``artifacts/console-viewer.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from base.settings import REPO_ROOT, Settings
from tests.fixtures.kafka import free_ports
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOM = "console-room"
SKU = "sku-scarf"
WAIT_MS = 90_000
ARTIFACTS = REPO_ROOT / "artifacts"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


class Stack:
    """The running workers (by job name) and the gateway."""

    def __init__(self, gateway: GatewayProcess, workers: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
        self.gateway = gateway
        self.workers = workers
        self.logs = logs

    def assert_workers_alive(self) -> None:
        for name, proc in self.workers.items():
            log = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            assert proc.poll() is None, f"worker {name} exited with {proc.returncode}:\n{log}"


@contextlib.contextmanager
def running_stack(settings: Settings, tmp_path: Path, jobs: tuple[str, ...]) -> Iterator[Stack]:
    env = {**os.environ, **settings.as_env(), "LC_LOG_FORMAT": "console"}
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for job, port in zip(jobs, free_ports(len(jobs)), strict=True):
            with (tmp_path / f"{job}.log").open("ab") as log:
                workers[job] = subprocess.Popen(
                    [sys.executable, "-m", "livecommerce.cli", "worker", job, "--worker-id", "c1", "--web-port",
                     str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with GatewayProcess(settings, log_path=tmp_path / "gateway.log") as gateway:
            yield Stack(gateway, workers, tmp_path)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def confirm(page: Any, button: str, sentence: str) -> None:
    """Click an action, check what the confirmation says, confirm it."""
    page.click(button)
    page.wait_for_selector("#hc-confirm:not([hidden])", timeout=WAIT_MS)
    assert sentence in (page.text_content("#hc-confirm-text") or "")
    page.click("#hc-confirm-yes")
    assert page.is_hidden("#hc-confirm")


def host_pins_and_opens_a_sale(host: Any) -> None:
    """Step 1, on the host's page."""
    host.wait_for_function("window.__lc && window.__lc.snapshots >= 1 && window.__hc", timeout=WAIT_MS)
    assert host.is_visible("#host-console")
    host.fill("#hc-sku", SKU)
    host.fill("#hc-title", "Silk scarf")
    confirm(host, "#hc-pin", f"Pin {SKU} (Silk scarf) over the live video?")
    host.wait_for_selector(f'#hc-log li[data-verb="pin"][data-sku="{SKU}"][data-status="applied"]', timeout=WAIT_MS)
    assert f"{SKU} · Silk scarf" in (host.text_content("#hc-pinned") or "")
    # "Back" on the confirmation sends nothing
    host.click("#hc-close")
    host.click("#hc-confirm-no")
    assert host.evaluate("window.__hc.actions.length") == 1
    host.fill("#hc-price", "129.00")
    host.fill("#hc-stock", "5")
    confirm(host, "#hc-open", f"Open a flash sale of {SKU}: 5 units at ¥129.00")
    host.wait_for_selector('#hc-log li[data-verb="open_sale"][data-status="applied"]', timeout=WAIT_MS)
    host.wait_for_selector(f'#hc-sales tr[data-sale="{SKU}"][data-state="open"][data-available="5"]',
                           timeout=WAIT_MS)


def viewer_buys_and_pays(viewer: Any) -> None:
    """Step 2, on the viewer's page."""
    viewer.wait_for_function("window.__vw && window.__vw.pinned && window.__vw.pinned.price_cents === 12900",
                             timeout=WAIT_MS)
    viewer.wait_for_function(f"window.__vw.stock['{SKU}'] && window.__vw.stock['{SKU}'].available === 5",
                             timeout=WAIT_MS)
    assert viewer.text_content("#title") == "Silk scarf"
    assert viewer.text_content("#price") == "¥129.00"
    assert viewer.text_content("#stock-left") == "5 left"
    assert re.fullmatch(r"ends in (10:00|9:[0-5]\d)", viewer.text_content("#countdown") or "")
    viewer.wait_for_function("window.__vw.impressions === 1", timeout=WAIT_MS)  # the pinned card was shown
    viewer.click("#buy")
    viewer.wait_for_selector("#answer.accepted", timeout=WAIT_MS)
    assert viewer.text_content("#answer-head") == "Accepted: it is yours for now"
    assert re.fullmatch(r"pay within (5:00|4:[0-5]\d) · ¥129\.00", viewer.text_content("#answer-detail") or "")
    viewer.screenshot(path=str(ARTIFACTS / "console-viewer-accepted.png"), full_page=True)
    viewer.click("#pay")
    viewer.wait_for_function("window.__vw.order.status === 'paid'", timeout=WAIT_MS)
    assert viewer.text_content("#answer-head") == "Paid: thank you!"


def host_sees_the_order_and_the_stock(host: Any) -> None:
    """Step 3, the order and stock part, on the host's page."""
    host.wait_for_selector(f'#stock [data-sku="{SKU}"][data-sold="1"][data-available="4"]', timeout=WAIT_MS)
    host.wait_for_selector(f'#hc-sales tr[data-sale="{SKU}"][data-sold="1"]', timeout=WAIT_MS)
    host.wait_for_function("window.__lc.counters && window.__lc.counters.orders_accepted_total === 1 "
                           "&& window.__lc.counters.gmv_paid_cents_total === 12900", timeout=WAIT_MS)
    assert host.text_content("#orders") == "1"
    assert host.text_content("#gmv") == "¥129"


def open_pages(pw: Any, stack: Stack, settings: Settings) -> tuple[Any, Any, Any]:
    now = int(time.time())
    host_token = mint_token(settings.jwt_secret, sub="anchor", role="host", room=ROOM, now_s=now)
    viewer_token = mint_token(settings.jwt_secret, sub="fan-1", role="viewer", room=ROOM, now_s=now)
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    host = browser.new_page(viewport={"width": 1400, "height": 1300})
    viewer = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    host.goto(f"{stack.gateway.url}/?token={host_token}")
    viewer.goto(f"{stack.gateway.url}/viewer?token={viewer_token}")
    return browser, host, viewer


def test_the_host_pins_and_opens_a_sale_a_viewer_buys_and_pays_and_the_host_sees_the_order_and_stock(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with running_stack(kafka_settings, tmp_path, ("flash-sale", "counters")) as stack, sync_playwright() as pw:
        browser, host, viewer = open_pages(pw, stack, kafka_settings)
        try:
            for page in (host, viewer):
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            host_pins_and_opens_a_sale(host)
            viewer_buys_and_pays(viewer)
            host_sees_the_order_and_the_stock(host)
            viewer.screenshot(path=str(ARTIFACTS / "console-viewer.png"), full_page=True)
            host.screenshot(path=str(ARTIFACTS / "console-host.png"), full_page=True)
            stack.assert_workers_alive()
        finally:
            with contextlib.suppress(Exception):
                browser.close()
    assert errors == []


def test_the_hosts_console_shows_the_sale_open_marker_and_the_per_sku_ctr(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Needs the console job (``livecommerce worker console``, topic ``room-console``) and ``console.js``'s DOM:
    funnel rows ``#console tr[data-sku]`` with ``td.impressions``, ``td.clicks``, ``td.ctr``, ``td.accepted``,
    ``td.paid``; chart markers ``#console [data-marker="sale_open"]``."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with running_stack(kafka_settings, tmp_path, ("flash-sale", "counters", "console")) as stack, \
            sync_playwright() as pw:
        browser, host, viewer = open_pages(pw, stack, kafka_settings)
        try:
            host_pins_and_opens_a_sale(host)
            viewer_buys_and_pays(viewer)
            host_sees_the_order_and_the_stock(host)
            stack.assert_workers_alive()
            row = f'#console tr[data-sku="{SKU}"]'
            paid = f"document.querySelector('{row} td.paid')"
            host.wait_for_function(f"{paid} !== null && {paid}.textContent.trim() === '1'", timeout=WAIT_MS)
            # one impression (the viewer's page showed the pinned card once), one click (the buy tap)
            assert (host.text_content(f"{row} td.impressions") or "").strip() == "1"
            assert (host.text_content(f"{row} td.clicks") or "").strip() == "1"
            assert (host.text_content(f"{row} td.accepted") or "").strip() == "1"
            assert re.fullmatch(r"100(\.0+)?\s*%", (host.text_content(f"{row} td.ctr") or "").strip())
            host.wait_for_selector('#console svg [data-marker="sale_open"]', state="attached", timeout=WAIT_MS)
            host.screenshot(path=str(ARTIFACTS / "console-host-funnel.png"), full_page=True)
        finally:
            with contextlib.suppress(Exception):
                browser.close()
