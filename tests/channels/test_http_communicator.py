"""channels.testing.HttpCommunicator with AsyncHttpConsumer: Channels 4's tests, and the open-response patterns.

Each event runs as on a worker (a fresh instance, the state through
msgpack, typed events through the configured layer), so what passes here
passes on workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application
from django.urls import path, re_path

from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import HttpCommunicator
from tests.channels import consumers2 as c


def run(coroutine):
    return asyncio.run(coroutine)


def test_channels_4_async_http_consumer_test(layer):
    async def main():
        communicator = HttpCommunicator(c.JsonEcho.as_asgi(), method="POST", path="/test/",
                                        body=json.dumps({"value": 42, "anything": False}).encode("utf-8"))
        return await communicator.get_response()

    response = run(main())
    assert response["body"] == b'{"value": 42}'
    assert response["status"] == 200
    assert response["headers"] == [(b"Content-Type", b"application/json")]


def test_channels_4_error_test(layer, caplog):
    class TestConsumer(AsyncHttpConsumer):
        async def handle(self, body):
            raise AssertionError("Error correctly raised")

    async def main():
        communicator = HttpCommunicator(TestConsumer.as_asgi(), "GET", "/")
        with pytest.raises(AssertionError) as excinfo:
            await communicator.get_response(timeout=0.05)
        assert str(excinfo.value) == "Error correctly raised"
        return await communicator.get_response()  # what the client got meanwhile

    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        assert run(main())["status"] == 500
    assert "TestConsumer.handle raised handling http.request; answering 500 to / (test)" in caplog.text


def test_djangos_own_handler_as_the_application(layer):
    async def main():
        return await HttpCommunicator(get_asgi_application(), "GET", "/").get_response()

    response = run(main())
    assert response["status"] == 200 and response["body"] == b"OK"


def test_channels_4_per_scope_consumers_test(layer):
    class TestConsumer(AsyncHttpConsumer):
        def __init__(self):
            super().__init__()
            self.time = time.time()

        async def handle(self, body):
            await self.send_response(200, f"{self.__class__.__name__} {id(self)} {self.time}".encode(),
                                     headers={b"Content-Type": b"text/plain"})

    async def main():
        app = TestConsumer.as_asgi()
        first = await HttpCommunicator(app, method="GET", path="/test/").get_response()
        second = await HttpCommunicator(app, method="GET", path="/test2/").get_response()
        return first, second

    first, second = run(main())
    assert first["status"] == second["status"] == 200 and first["body"] != second["body"]


def test_server_sent_events_pushed_by_group_send_from_elsewhere(layer):
    c.ServerSentEvents.disconnects.clear()
    app = URLRouter([re_path(r"^events/(?P<room>\w+)/$", c.ServerSentEvents.as_asgi())])

    async def main():
        stream = HttpCommunicator(app, "GET", "/events/lobby/")
        await stream.send_input({"type": "http.request"})
        start = await stream.receive_output()
        assert start["type"] == "http.response.start" and start["status"] == 200
        assert (b"Content-Type", b"text/event-stream") in start["headers"]
        assert await stream.receive_output() == {"type": "http.response.body", "body": b": open\n\n", "more_body": True}
        assert await stream.receive_nothing()
        # What a view does elsewhere: a group_send, from a thread of its own.
        await asyncio.get_running_loop().run_in_executor(None, lambda: async_to_sync(get_channel_layer().group_send)(
            "sse_lobby", {"type": "news.item", "text": "from a view"}))
        assert await stream.receive_output() == {"type": "http.response.body", "body": b"data: from a view #1\n\n",
                                                 "more_body": True}
        await get_channel_layer().group_send("sse_lobby", {"type": "news.item", "text": "the end", "last": True})
        assert (await stream.receive_output())["body"] == b"data: the end #2\n\n"
        return stream

    stream = run(main())
    assert c.ServerSentEvents.disconnects == [(stream.channel_name, 2)]
    assert layer.group_channels("sse_lobby") == []


def test_the_client_going_away_runs_disconnect_with_the_kept_state(layer):
    c.ServerSentEvents.disconnects.clear()
    app = URLRouter([re_path(r"^events/(?P<room>\w+)/$", c.ServerSentEvents.as_asgi())])

    async def main():
        stream = HttpCommunicator(app, "GET", "/events/gone/")
        await stream.send_input({"type": "http.request"})
        await get_channel_layer().group_send("sse_gone", {"type": "news.item", "text": "x"})
        for _ in range(3):
            await stream.receive_output()
        await stream.send_input({"type": "http.disconnect"})
        return stream

    stream = run(main())
    assert c.ServerSentEvents.disconnects == [(stream.channel_name, 1)]
    assert layer.group_channels("sse_gone") == []


def test_get_response_of_a_long_poll_completed_by_an_event(layer):
    async def main():
        poll = HttpCommunicator(c.LongPoll.as_asgi(), "GET", "/poll/")
        await poll.send_input({"type": "http.request"})
        assert await poll.receive_nothing()  # ASGI: no head goes out before a body
        await get_channel_layer().group_send("poll", {"type": "poll.result", "data": {"n": 5}})
        return await poll.get_response()

    response = run(main())
    assert response == {"status": 200, "headers": [(b"Content-Type", b"application/json")], "body": b'{"n": 5}'}


def test_url_router_serves_a_consumer_and_django_views_side_by_side(layer):
    app = ProtocolTypeRouter({"http": URLRouter([
        path("json/", c.JsonEcho.as_asgi()),
        re_path(r"", get_asgi_application()),
    ])})

    async def main():
        consumer = await HttpCommunicator(app, "POST", "/json/", b'{"value": 3}').get_response()
        view = await HttpCommunicator(app, "GET", "/").get_response()
        return consumer, view

    consumer, view = run(main())
    assert consumer["body"] == b'{"value": 3}'
    assert view["status"] == 200 and view["body"] == b"OK"


def test_state_between_events_travels_through_msgpack(layer, caplog):
    class KeepsALock(AsyncHttpConsumer):
        async def handle(self, body):
            self.lock = threading.Lock()
            self.name = "kept"
            await self.send_headers()
            await self.send_body(b"", more_body=True)

        async def report(self, event):
            await self.send_body(f"{self.name} {hasattr(self, 'lock')}".encode())

    async def main():
        communicator = HttpCommunicator(KeepsALock.as_asgi(), "GET", "/")
        await communicator.send_input({"type": "http.request"})
        await get_channel_layer().send(communicator.channel_name, {"type": "report"})
        return await communicator.get_response()

    with caplog.at_level(logging.WARNING, logger="channels.turns"):
        response = run(main())
    assert response["body"] == b"kept False"
    assert "KeepsALock.lock (lock) is not kept" in caplog.text


def test_send_input_refuses_what_a_client_cannot_send(layer):
    async def main():
        communicator = HttpCommunicator(c.JsonEcho.as_asgi(), "GET", "/")
        with pytest.raises(ValueError, match="http.request or http.disconnect"):
            await communicator.send_input({"type": "websocket.connect"})

    run(main())
