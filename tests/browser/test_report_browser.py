"""The post-stream report in real headless Chromium, offline: every chart renders from the inlined
plotly.js with every network request refused.  A screenshot goes to ``artifacts/report.png``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from analytics.build import build_report
from analytics.html import render_html
from base.settings import REPO_ROOT, Settings
from tests.integration.test_report import DAY_MS, ROOM, START, insert, make_stream
from warehouse.pseudonym import Pseudonymiser

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CHARTS = ["chart-online", "chart-gmv", "chart-engagement", "chart-funnel", "chart-product-funnel", "chart-sources",
          "chart-sentiment", "chart-skus",
          # the 3 worst metrics against the benchmark (the previous day's stream is the whole history)
          "chart-bench-0", "chart-bench-1", "chart-bench-2"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


def test_report_renders_every_chart_offline(warehouse_db: tuple[Client, str], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    client, database = warehouse_db
    ps = Pseudonymiser(Settings().pseudonym_secret)
    streams = [make_stream(11, START, 12, ps, hostile=False), make_stream(12, START + DAY_MS, 12, ps, hostile=True)]
    insert(client, database, streams, random.Random(3))
    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(build_report(client, database, ROOM)), encoding="utf-8")

    refused: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1800}, offline=True)

            def refuse(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if url.startswith("file://"):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    refused.append(url)
                    route.abort()  # type: ignore[attr-defined]

            context.route("**/*", refuse)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-charts-rendered]", timeout=60_000)
            assert page.get_attribute("body", "data-charts-rendered") == str(len(CHARTS))
            for chart in CHARTS:
                assert page.locator(f"#{chart}.js-plotly-plot .main-svg").count() >= 1, chart
            # the curves carry data: the online line and the funnel bars are drawn, the titles are there
            assert page.locator("#chart-online .scatterlayer path.js-line").count() >= 2  # this and previous stream
            assert page.locator("#chart-funnel .funnellayer .point").count() == 6
            # key events (sale open, pins, sold out, alerts, online peak) are drawn on every trend
            for trend in ("chart-online", "chart-gmv", "chart-engagement"):
                assert page.locator(f"#{trend} .shapelayer path").count() >= 5, trend
                assert page.locator(f"#{trend} .legend .legendtext", has_text="sale open").count() == 1, trend
            assert "Sentiment timeline" in page.inner_text("#chart-sentiment")
            assert page.evaluate("typeof window.Plotly") == "object"
            hostile = page.locator("table.comments td", has_text='<script>alert("pwned")</script>')
            assert hostile.count() == 1  # shown as text, not run
            out = REPO_ROOT / "artifacts"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / "report.png"), full_page=True)
        finally:
            browser.close()
    assert refused == []
    assert errors == []
