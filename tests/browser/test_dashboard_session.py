"""The dashboard's session in real headless Chromium: it renews its token in-band, or says it expired.

The gateway closes a connection with 4003 at its token's ``exp``, even an idle one (the dashboard sends
nothing after subscribing).  A page opened with ``?renew_url=`` fetches a fresh token before that and
renews in-band, so it stays live past the first token's ``exp``; a page without one shows "session
expired" instead of silently going stale.  The renew endpoint is a small real HTTP server standing in
for the embedding app's own auth (the project has none of its own); broker and gateway are real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from base.settings import Settings
from tests.browser.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _produce
from tests.integration.test_gateway import counters, now_ms
from ws_gateway.auth import mint_token
from ws_gateway.runner import GatewayProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]
ROOM = "session-room"
WAIT_MS = 60_000


@pytest.fixture
def renew_server(kafka_settings: Settings) -> Iterator[tuple[str, list[str]]]:
    """An app's token endpoint: GET mints a 600 s host token for the same user and room (CORS open)."""
    issued: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            tok = mint_token(kafka_settings.jwt_secret, sub="host-browser", role="host", room=ROOM,
                             now_s=int(time.time()), ttl_s=600)
            issued.append(tok)
            body = json.dumps({"token": tok}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", issued
    finally:
        server.shutdown()
        server.server_close()


def test_the_dashboard_renews_before_exp_or_says_the_session_expired(
    kafka_settings: Settings, renew_server: tuple[str, list[str]]
) -> None:
    from playwright.sync_api import sync_playwright

    s = kafka_settings
    renew_url, issued = renew_server
    _produce(s, "room-counters", counters(ROOM, now_ms(), online=5))

    def short_token() -> tuple[str, int]:
        now = int(time.time())
        return mint_token(s.jwt_secret, sub="host-browser", role="host", room=ROOM, now_s=now, ttl_s=4), now + 4

    with GatewayProcess(s) as gw, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            renewing = browser.new_page()
            tok, renewing_exp = short_token()
            renewing.goto(f"{gw.url}/?token={tok}&renew_url={quote(renew_url)}")
            expiring = browser.new_page()
            tok, expiring_exp = short_token()
            expiring.goto(f"{gw.url}/?token={tok}")
            for page in (renewing, expiring):
                page.wait_for_function("window.__lc.snapshots >= 1", timeout=WAIT_MS)
            # without a way to renew: closed with 4003 at exp, and the page says so (no silent stale numbers)
            expiring.wait_for_function("window.__lc.sessionExpired === true", timeout=WAIT_MS)
            assert expiring.evaluate("window.__lc.closeCode") == 4003
            assert "session expired" in (expiring.text_content("#status") or "")
            assert time.time() >= expiring_exp
            # with a renew_url: renewed in-band before exp, and still live after it
            renewing.wait_for_function("window.__lc.renewals >= 1", timeout=WAIT_MS)
            assert issued and renewing.evaluate("window.__lc.exp") > renewing_exp + 500
            while time.time() < renewing_exp + 2:
                renewing.wait_for_timeout(250)
            _produce(s, "room-counters", counters(ROOM, now_ms(), online=77))
            renewing.wait_for_function("window.__lc.counters && window.__lc.counters.online === 77", timeout=WAIT_MS)
            assert renewing.evaluate("window.__lc.closeCode") is None
            assert renewing.text_content("#status") == "live"
        finally:
            browser.close()
