"""The viewer's buy page (``ws_gateway/static/viewer.html``) in real headless Chromium, against the
real gateway, the real flash-sale worker and the session's Kafka broker.

The gateway serves the page at ``/viewer?token=…``.  Everything the page does (subscribe, order, pay,
cancel, comment, like, and the product click of each buy tap) goes through the gateway into Kafka, and
every answer comes from the flash-sale worker.  A screenshot goes to ``artifacts/viewer.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from base.settings import REPO_ROOT, Settings
from schemas import TOPICS, HostAction, Like, encode
from schemas.host import sale_config_for
from tests.fixtures.kafka import free_ports
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOM = "viewer-room"
SKU = "sku-viewer"
WAIT_MS = 90_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture
def stack(kafka_settings: Settings, tmp_path: Path) -> Iterator[GatewayProcess]:
    """The flash-sale worker and the gateway on the test's topics; stopped by PID afterwards."""
    env = {**os.environ, **kafka_settings.as_env(), "LC_LOG_FORMAT": "console"}
    (port,) = free_ports(1)
    with (tmp_path / "flash-sale.log").open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "livecommerce.cli", "worker", "flash-sale", "--worker-id",
                                   "v1", "--web-port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        with GatewayProcess(kafka_settings, log_path=tmp_path / "gateway.log") as gateway:
            yield gateway
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def open_sale(settings: Settings) -> None:
    """The host opens the sale: the audit record and the sale command it becomes, as the console will."""
    from confluent_kafka import Producer

    now = int(time.time() * 1000)
    action = HostAction(event_id="viewer-open", room_id=ROOM, host_id="host-1", action="open_sale", sku_id=SKU,
                        stock=5, price_cents=12900, starts_at=now - 1000, ends_at=now + 600_000, per_user_limit=1,
                        reservation_ttl_s=300, title="Silk scarf", ts=now)
    config = sale_config_for(action)
    assert config is not None
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "partitioner": "murmur2_random"})
    for topic, event in (("host-actions", action), ("sale-config", config)):
        producer.produce(settings.topic(topic), encode(event), key=TOPICS[topic].key_of(event))
    assert producer.flush(30) == 0


def read_topic(
    settings: Settings, topic: str, done: Callable[[list[bytes]], bool], timeout_s: float = 60
) -> list[bytes]:
    """The topic's messages from the start, read until ``done`` says enough (or the timeout)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"viewer-test-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.topic(topic)])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(out) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value():
                out.append(msg.value())
    finally:
        consumer.close()
    return out


def test_a_viewer_buys_retries_safely_cancels_pays_is_refused_in_words_comments_and_likes(
    stack: GatewayProcess, kafka_settings: Settings
) -> None:
    from playwright.sync_api import sync_playwright

    s = kafka_settings
    token = mint_token(s.jwt_secret, sub="phone-viewer", role="viewer", room=ROOM, now_s=int(time.time()))
    artifacts = REPO_ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{stack.url}/viewer?token={token}")
            page.wait_for_function("window.__vw && window.__vw.snapshots >= 1", timeout=WAIT_MS)
            assert page.text_content("#room") == ROOM
            open_sale(s)
            # the product, its price and the units left arrive as the flash-sale worker's stock update
            page.wait_for_function(f"window.__vw.stock['{SKU}'] && window.__vw.stock['{SKU}'].available === 5",
                                   timeout=WAIT_MS)
            assert page.text_content("#title") == SKU
            assert page.text_content("#price") == "¥129.00"
            assert page.text_content("#stock-left") == "5 left"

            # buy: the page picks the order id; the worker's answer shows with the hold's countdown
            page.click("#buy")
            page.wait_for_selector("#answer.accepted", timeout=WAIT_MS)
            first_id = page.evaluate("window.__vw.order.order_id")
            assert first_id.startswith("o-") and len(first_id) == 26
            assert re.match(r"pay within (5:00|4:[0-5]\d) · ¥129\.00$", page.text_content("#answer-detail") or "")
            page.wait_for_function("document.getElementById('answer-detail').textContent.startsWith('pay within 4:')",
                                   timeout=5_000)  # the 300 s hold counts down
            page.wait_for_function(f"window.__vw.stock['{SKU}'].reserved === 1", timeout=WAIT_MS)

            # cancel gives the unit back; a new order (new id) is accepted again
            page.click("#cancel")
            page.wait_for_function("window.__vw.order.status === 'cancelled'", timeout=WAIT_MS)
            page.wait_for_function(f"window.__vw.stock['{SKU}'].available === 5", timeout=WAIT_MS)
            page.wait_for_timeout(2100)  # the risk rules refuse a new order within 2 s of the last as a duplicate
            page.click("#buy")
            page.wait_for_function("window.__vw.order.status === 'accepted'", timeout=WAIT_MS)
            second_id = page.evaluate("window.__vw.order.order_id")
            assert second_id != first_id

            # a retry of the same order (as after a lost answer) changes nothing: same answer, one unit held
            page.evaluate("window.__vw.order.status = 'pending'; sendOrder()")
            page.wait_for_function("window.__vw.order.status === 'accepted' && window.__vw.order.tries >= 2",
                                   timeout=WAIT_MS)
            assert page.evaluate("window.__vw.order.order_id") == second_id
            page.wait_for_timeout(1000)
            assert page.evaluate(f"window.__vw.stock['{SKU}'].reserved") == 1

            page.click("#pay")
            page.wait_for_function("window.__vw.order.status === 'paid'", timeout=WAIT_MS)
            assert page.text_content("#answer-head") == "Paid: thank you!"
            page.wait_for_function(f"window.__vw.stock['{SKU}'].sold === 1", timeout=WAIT_MS)

            # refusals come with their reason in words: a new order at once is taken for a double tap ...
            page.click("#buy")
            page.wait_for_selector("#answer.rejected", timeout=WAIT_MS)
            assert page.text_content("#answer-detail") == "You just ordered this: your first order stands."
            # ... and later, one per person
            page.wait_for_timeout(2100)
            page.click("#buy")
            page.wait_for_function("window.__vw.order.reason === 'user_limit'", timeout=WAIT_MS)
            assert page.text_content("#answer-head") == "Not accepted"
            assert page.text_content("#answer-detail") == "You already have as many as one person may buy."

            # a comment and three likes go through the gateway into Kafka
            page.fill("#comment-text", "这条丝巾好看 🔥")
            page.click(".send")
            page.wait_for_function("window.__vw.sentComments === 1", timeout=WAIT_MS)
            assert page.locator("#feed li.mine", has_text="这条丝巾好看").count() == 1
            for _ in range(3):
                page.click("#like")
            assert page.text_content("#like-count") == "3"
            page.wait_for_function("window.__vw.likesSent === 3", timeout=WAIT_MS)  # taps go out in 200 ms batches
            page.screenshot(path=str(artifacts / "viewer.png"), full_page=True)
        finally:
            with contextlib.suppress(Exception):
                browser.close()
    assert errors == []
    comments = [msgspec.json.decode(v) for v in read_topic(s, "comments", lambda got: len(got) >= 1)]
    assert [(c["room_id"], c["user_id"], c["text"]) for c in comments] == [(ROOM, "phone-viewer", "这条丝巾好看 🔥")]
    def taps(got: list[bytes]) -> int:
        return sum(msgspec.json.decode(v, type=Like).count for v in got)

    assert taps(read_topic(s, "likes", lambda got: taps(got) >= 3)) == 3
    orders = [msgspec.json.decode(v)["order_id"] for v in read_topic(s, "orders", lambda got: len(got) >= 4)]
    # four orders the viewer meant (bought, bought again, two refused); the retry of the second was answered
    # by the gateway from its ledger of answers, so it never became a second attempt
    assert len(orders) == len(set(orders)) == 4 and first_id in orders and second_id in orders
    # each of the four buy taps is one product click of this viewer (the CTR's numerator)
    clicks = [msgspec.json.decode(v) for v in read_topic(s, "product-clicks", lambda got: len(got) >= 4)]
    assert [(c["user_id"], c["sku_id"]) for c in clicks] == [("phone-viewer", SKU)] * 4
