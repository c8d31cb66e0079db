"""The host's console actions through the real gateway into the real broker, and each refusal (issue 12).

What "nothing was produced" means here, without waiting for an absence: after the refused frames the test
makes one valid action on the SAME keys (room for ``host-actions``, SKU for ``sale-config``) through the same
gateway, waits for its ack, then reads the topics to their end.  The gateway's producer is idempotent and
keeps order per partition, so anything a refused frame had produced would sit before that sentinel.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from base.settings import Settings
from schemas import HostAction, ProductClick, ProductImpression, SaleConfig, decode
from tests.fixtures.kafka import consume_all
from tests.integration.test_gateway import (
    close_code_of,
    now_ms,
    open_ws,
    produce,
    recv_json,
    recv_until,
    stock,
    token,
)
from ws_gateway.runner import GatewayProcess

pytestmark = pytest.mark.integration


def open_sale(sku: str, event_id: str, **terms: Any) -> dict[str, Any]:
    now = now_ms()
    return {"type": "host_action", "action": "open_sale", "sku_id": sku, "stock": 5, "price_cents": 12900,
            "starts_at": now - 1000, "ends_at": now + 600_000, "title": "Silk scarf", "event_id": event_id,
            "ref": event_id, **terms}


async def send(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send one frame and return the gateway's answer to it (matched by its ``ref``)."""
    await ws.send(orjson.dumps(frame).decode())
    return (await recv_until(ws, lambda m: m.get("ref") == frame["ref"] and m["type"] in ("ack", "error")))[-1]


def records(settings: Settings, topic: str, cls: type[Any]) -> list[Any]:
    return [decode(cls, m.value() or b"") for m in consume_all(settings, topic)]


def test_a_host_pins_and_opens_a_sale_once_however_often_it_clicks_and_viewers_see_the_card(
    kafka_settings: Settings,
) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "host", "r1", sub="anchor")) as host, \
                await open_ws(gw, token(s, "viewer", "r1", sub="fan")) as viewer:
            await viewer.send('{"type":"subscribe"}')
            assert (await recv_json(viewer))["pinned"] is None
            pin = {"type": "host_action", "action": "pin", "sku_id": "sku-1", "title": "Silk scarf",
                   "event_id": "pin-1", "ref": "p1"}
            ack = await send(host, pin)
            assert ack["type"] == "ack" and ack["action"] == "host_action" and ack["verb"] == "pin"
            opened = open_sale("sku-1", "open-1")
            ack = await send(host, opened)
            assert ack["type"] == "ack" and ack["verb"] == "open_sale" and ack["sku_id"] == "sku-1"
            for _ in range(3):  # the console's retries of one click: answered, never produced again
                again = await send(host, {**opened, "ref": "retry"})
                assert again["type"] == "ack" and again["duplicate"] is True and again["event_id"] == ack["event_id"]
            # the pin, read back from host-actions, reaches the viewer; the terms once the job applied them
            update = (await recv_until(viewer, lambda m: m.get("pinned") is not None))[-1]
            assert update["pinned"]["sku_id"] == "sku-1" and update["pinned"]["title"] == "Silk scarf"
            config = records(s, "sale-config", SaleConfig)[0]
            produce(s, "sale-config-applied", config)  # what the flash-sale job emits once it applied it
            update = (await recv_until(viewer, lambda m: (m.get("pinned") or {}).get("price_cents") is not None))[-1]
            assert update["pinned"]["price_cents"] == 12900 and update["pinned"]["state"] == "open"
            assert update["pinned"]["ends_at"] == opened["ends_at"]
            assert "sales" not in update  # the host's table of sales is not the viewer's business

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))
    audit = records(s, "host-actions", HostAction)
    assert [(a.action, a.room_id, a.host_id, a.sku_id) for a in audit] == [
        ("pin", "r1", "anchor", "sku-1"), ("open_sale", "r1", "anchor", "sku-1")]
    configs = records(s, "sale-config", SaleConfig)
    assert len(configs) == 1 and configs[0].event_id == audit[1].event_id
    assert (configs[0].action, configs[0].room_id, configs[0].stock, configs[0].price_cents) == ("open", "r1", 5, 12900)


def test_a_viewer_or_ops_token_cannot_pin_open_or_restock_and_persisting_closes_it_with_4009(
    kafka_settings: Settings,
) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        attempts = [
            {"type": "host_action", "action": "pin", "sku_id": "sku-v", "ref": "pin"},
            {**open_sale("sku-v", "v-open"), "ref": "open"},
            {"type": "host_action", "action": "restock", "sku_id": "sku-v", "stock": 100, "ref": "restock"},
        ]
        async with await open_ws(gw, token(s, "viewer", "r1", sub="fan")) as viewer:
            for frame in attempts:
                answer = await send(viewer, frame)
                assert answer["code"] == "forbidden_action", answer
                assert "viewer connection cannot send host_action" in answer["message"]
            # the fourth refused frame is past --strike-burst 3: the connection is closed with 4009
            await viewer.send(orjson.dumps({**attempts[0], "ref": "again"}).decode())
            assert await close_code_of(viewer) == 4009
        async with await open_ws(gw, token(s, "ops", None, sub="op")) as ops:
            answer = await send(ops, {**attempts[1], "ref": "ops-open"})
            assert answer["code"] == "forbidden_action"
        async with await open_ws(gw, token(s, "host", "r1", sub="anchor")) as host:  # the sentinel
            assert (await send(host, open_sale("sku-v", "sentinel")))["type"] == "ack"

    with GatewayProcess(s, "--strike-burst", "3") as gw:
        asyncio.run(scenario(gw))
    assert [(a.host_id, a.action) for a in records(s, "host-actions", HostAction)] == [("anchor", "open_sale")]
    assert [c.room_id for c in records(s, "sale-config", SaleConfig)] == ["r1"]


def test_the_host_of_room_a_cannot_act_in_room_b(kafka_settings: Settings) -> None:
    s = kafka_settings
    produce(s, "stock", stock("room-b", "sku-b", 10))  # sku-b is on sale in room B

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "host", "room-b", sub="host-b")) as host_b:
            await host_b.send('{"type":"subscribe"}')
            await recv_until(host_b, lambda m: m["type"] == "snapshot" and "sku-b" in m["stock"])
            async with await open_ws(gw, token(s, "host", "room-a", sub="host-a")) as host_a:
                # naming the other room in the frame: no such field, the room is the token's
                answer = await send(host_a, {**open_sale("sku-b", "a1"), "room_id": "room-b"})
                assert answer["code"] == "invalid_message" and "room_id" in answer["message"]
                # acting on room B's SKU from room A's token
                for frame in (open_sale("sku-b", "a2"),
                              {"type": "host_action", "action": "restock", "sku_id": "sku-b", "stock": 9, "ref": "a3"},
                              {"type": "host_action", "action": "close_sale", "sku_id": "sku-b", "ref": "a4"}):
                    answer = await send(host_a, frame)
                    assert answer["code"] == "forbidden_action" and "on sale in another room" in answer["message"]
                # and subscribing to room B closes the connection (4004), as for any token
                await host_a.send('{"type":"subscribe","room":"room-b"}')
                assert await close_code_of(host_a) == 4004
            sentinel = {"type": "host_action", "action": "close_sale", "sku_id": "sku-b", "event_id": "s", "ref": "s"}
            assert (await send(host_b, sentinel))["type"] == "ack"

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))
    assert [(a.room_id, a.action) for a in records(s, "host-actions", HostAction)] == [("room-b", "close_sale")]
    assert [(c.room_id, c.action) for c in records(s, "sale-config", SaleConfig)] == [("room-b", "close")]


def test_an_invalid_host_action_gets_an_error_and_changes_nothing(kafka_settings: Settings) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "host", "r1", sub="anchor")) as host, \
                await open_ws(gw, token(s, "viewer", "r1", sub="fan")) as viewer:
            pin = {"type": "host_action", "action": "pin", "sku_id": "sku-1", "event_id": "p", "ref": "p"}
            assert (await send(host, pin))["type"] == "ack"
            await viewer.send('{"type":"subscribe"}')
            await recv_until(viewer, lambda m: (m.get("pinned") or {}).get("sku_id") == "sku-1")
            now = now_ms()
            invalid: list[tuple[dict[str, Any], str, str]] = [
                ({**open_sale("sku-1", "i1"), "price_cents": None}, "invalid_action", "open_sale needs price_cents"),
                (open_sale("sku-1", "i2", starts_at=now + 60_000, ends_at=now + 1000), "invalid_action",
                 "ends_at must be after starts_at"),
                (open_sale("sku-1", "i3", starts_at=now - 60_000, ends_at=now - 1000), "invalid_action",
                 "already be over"),
                (open_sale("sku-1", "i4", price_cents=10**12), "invalid_action", "price_cents"),
                (open_sale("sku-1", "i5", stock=-5), "invalid_message", "stock"),
                ({"type": "host_action", "action": "restock", "sku_id": "sku-1", "stock": 0, "ref": "i6"},
                 "invalid_action", "restock needs stock > 0"),
                ({"type": "host_action", "action": "pin", "sku_id": "sku 2 <b>", "ref": "i7"}, "invalid_message",
                 "sku_id"),
                ({"type": "host_action", "action": "drop_table", "sku_id": "sku-1", "ref": "i8"}, "invalid_message",
                 "action"),
                ({"type": "host_action", "action": "pin", "sku_id": "sku-9", "host_id": "someone", "ref": "i9"},
                 "invalid_message", "host_id"),
            ]
            for frame, code, words in invalid:
                answer = await send(host, frame)
                assert answer["type"] == "error" and answer["code"] == code and words in answer["message"], answer
            # the card did not move: a fresh viewer snapshot still shows the first pin
            await viewer.send('{"type":"subscribe"}')
            snapshot = (await recv_until(viewer, lambda m: m["type"] == "snapshot"))[-1]
            assert snapshot["pinned"]["sku_id"] == "sku-1" and snapshot["pinned"]["price_cents"] is None
            sentinel = {"type": "host_action", "action": "close_sale", "sku_id": "sku-1", "event_id": "c", "ref": "c"}
            assert (await send(host, sentinel))["type"] == "ack"

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))
    assert [a.action for a in records(s, "host-actions", HostAction)] == ["pin", "close_sale"]
    assert [c.action for c in records(s, "sale-config", SaleConfig)] == ["close"]


def test_a_viewers_impressions_and_clicks_are_produced_as_theirs_once_per_key(kafka_settings: Settings) -> None:
    s = kafka_settings

    async def scenario(gw: GatewayProcess) -> None:
        async with await open_ws(gw, token(s, "viewer", "r1", sub="fan")) as viewer, \
                await open_ws(gw, token(s, "host", "r1", sub="anchor")) as host:
            for ref in ("i1", "i2"):  # one showing, sent twice
                answer = await send(viewer, {"type": "impression", "sku_id": "sku-1", "event_id": "show-1", "ref": ref})
                assert answer["type"] == "ack"
            answer = await send(viewer, {"type": "product_click", "sku_id": "sku-1", "ref": "c1"})
            assert answer["type"] == "ack"
            answer = await send(host, {"type": "product_click", "sku_id": "sku-1", "ref": "h"})
            assert answer["code"] == "forbidden_action"

    with GatewayProcess(s) as gw:
        asyncio.run(scenario(gw))
    shown = records(s, "impressions", ProductImpression)
    assert [(i.room_id, i.user_id, i.sku_id, i.placement) for i in shown] == [("r1", "fan", "sku-1", "pinned")]
    clicks = records(s, "product-clicks", ProductClick)
    assert [(c.room_id, c.user_id, c.sku_id) for c in clicks] == [("r1", "fan", "sku-1")]
