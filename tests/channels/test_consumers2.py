"""Channels 2-4 consumers through WebsocketCommunicator: each event on a fresh instance, state through msgpack."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from django.urls import path, re_path

from channels.consumer import get_handler_name
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from tests.channels import consumers2 as c


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _layer(layer):
    yield layer


def test_seed_000_chat_consumer_keeps_username_between_events():
    async def main():
        comm = WebsocketCommunicator(c.Seed000ChatConsumer.as_asgi(), "/chat/")
        connected, _ = await comm.connect()
        assert connected
        assert await comm.receive_from() == "[Welcome Anonymous!]"
        await comm.send_to(text_data="hi")
        assert await comm.receive_from() == "Anonymous: hi"
        await comm.send_to(text_data="/name ada")
        assert await comm.receive_from() == "[set your username to ada]"
        await comm.send_to(text_data="hello")
        assert await comm.receive_from() == "ada: hello"
        await comm.disconnect()

    run(main())


@pytest.mark.parametrize("consumer", [c.ChatConsumer, c.AsyncChatConsumer])
def test_seed_002_room_broadcast_between_two_connections(consumer):
    app = URLRouter([re_path(r'ws/chat/(?P<room_name>\w+)/$', consumer.as_asgi())])

    async def main():
        alice = WebsocketCommunicator(app, "/ws/chat/lobby/")
        bob = WebsocketCommunicator(app, "/ws/chat/lobby/")
        other = WebsocketCommunicator(app, "/ws/chat/kitchen/")
        for comm in (alice, bob, other):
            assert (await comm.connect())[0]
        await alice.send_to(text_data=json.dumps({"message": "hi bob"}))
        assert json.loads(await alice.receive_from()) == {"message": "hi bob"}
        assert json.loads(await bob.receive_from()) == {"message": "hi bob"}
        assert await other.receive_nothing()
        await bob.disconnect()
        await alice.send_to(text_data=json.dumps({"message": "anyone?"}))
        assert json.loads(await alice.receive_from()) == {"message": "anyone?"}
        assert get_channel_layer().backend.group_channels("chat_lobby") == [alice.channel_name]
        await alice.disconnect()
        await other.disconnect()

    run(main())


@pytest.mark.parametrize("consumer", [c.EchoConsumer, c.AsyncEchoConsumer])
def test_echo_text_and_bytes(consumer):
    async def main():
        comm = WebsocketCommunicator(consumer.as_asgi(), "/echo/")
        assert await comm.connect() == (True, None)
        await comm.send_to(text_data="ünï")
        assert await comm.receive_from() == "ünï"
        await comm.send_to(bytes_data=b"\x00\xff")
        assert await comm.receive_from() == b"\x00\xff"
        await comm.disconnect()

    run(main())


def test_groups_attribute_typed_events_close_and_json():
    async def main():
        comm = WebsocketCommunicator(c.GroupsConsumer.as_asgi(), "/g/")
        assert (await comm.connect())[0]
        await comm.send_json_to({"a": 1})
        assert await comm.receive_json_from() == {"count": 1, "echo": {"a": 1}}
        layer = get_channel_layer()
        await layer.group_send("everyone", {"type": "news.item", "text": "extra"})
        assert await comm.receive_json_from() == {"news": "extra", "count": 1}
        await layer.send(comm.channel_name, {"type": "news_item", "text": "direct"})
        assert await comm.receive_json_from() == {"news": "direct", "count": 1}
        await comm.send_json_to({"close": True})
        assert await comm.receive_output() == {"type": "websocket.close", "code": 4001}
        await comm.disconnect()
        assert layer.backend.group_channels("everyone") == []

    run(main())


def test_async_json_consumer_subprotocol_and_list_state():
    async def main():
        comm = WebsocketCommunicator(c.AsyncJsonCounter.as_asgi(), "/j/", subprotocols=["chat.v1", "chat.v2"])
        assert await comm.connect() == (True, "chat.v2")
        await comm.send_json_to({"n": 1})
        await comm.send_json_to({"n": 2})
        assert (await comm.receive_json_from())["seen"] == [{"n": 1}]
        assert (await comm.receive_json_from())["seen"] == [{"n": 1}, {"n": 2}]
        await comm.disconnect()

    run(main())


def test_connect_that_closes_refuses():
    async def main():
        comm = WebsocketCommunicator(c.Refuser.as_asgi(), "/no/")
        assert await comm.connect() == (False, 1000)

    run(main())


def test_missing_handler_names_type_and_class(caplog):
    async def main():
        comm = WebsocketCommunicator(c.EchoConsumer.as_asgi(), "/e/")
        assert (await comm.connect())[0]
        await get_channel_layer().send(comm.channel_name, {"type": "chat.message", "message": "x"})
        with pytest.raises(ValueError, match=r"EchoConsumer has no handler for message type 'chat.message'"):
            await comm.receive_output()

    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        run(main())
    lines = [r for r in caplog.records if "no handler" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "chat_message" in lines[0].getMessage()


def test_raising_handler_is_logged_with_class_method_and_closes_1011(caplog):
    async def main():
        comm = WebsocketCommunicator(c.Broken.as_asgi(), "/broken/")
        assert (await comm.connect())[0]
        with pytest.raises(RuntimeError, match="kaboom"):
            await comm.send_to(text_data="boom")
        assert await comm.receive_output() == {"type": "websocket.close", "code": 1011}

    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        run(main())
    (record,) = [r for r in caplog.records if "raised" in r.getMessage()]
    assert "Broken.receive raised handling websocket.receive" in record.getMessage()
    assert "/broken/" in record.getMessage() and record.exc_info is not None


def test_unpackable_attribute_is_dropped_with_one_warning(caplog):
    async def main():
        comm = WebsocketCommunicator(c.KeepsASocket.as_asgi(), "/k/")
        assert (await comm.connect())[0]
        for _ in range(2):
            await comm.send_to(text_data="?")
            assert await comm.receive_from() == "kept False"

    with caplog.at_level(logging.WARNING, logger="channels.turns"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()]
    assert len(warnings) == 1 and "KeepsASocket.lock" in warnings[0]


def test_as_asgi_initkwargs_and_nested_url_router_kwargs():
    inner = URLRouter([path("<str:who>/", c.Greeter.as_asgi(greeting="hey"))])
    app = URLRouter([path("greet/", inner)])

    async def main():
        comm = WebsocketCommunicator(app, "/greet/ada/")
        assert (await comm.connect())[0]
        assert await comm.receive_from() == "hey ada"
        missing = WebsocketCommunicator(app, "/nowhere/")
        with pytest.raises(ValueError, match="No route found for path '/nowhere/'"):  # as in Channels
            await missing.connect()

    run(main())
    with pytest.raises(TypeError, match="greting"):
        c.Greeter.as_asgi(greting="typo")


def test_handler_names():
    assert get_handler_name({"type": "chat.message"}) == "chat_message"
    with pytest.raises(ValueError):
        get_handler_name({"type": "_private"})
    with pytest.raises(ValueError):
        get_handler_name({"text": "no type"})
