"""The worker's side of Channels 2-4 consumers: ASGI_APPLICATION run for one message at a time (channels.turns).

The test plays the interface server on the in-memory layer: it sends the
1.x messages with the state the previous answer carried, and reads the
answers from the reply channel.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import path, re_path

from asgi_backends.inmemory import ChannelLayer
from channels import channel_layers
from channels.asgi import ChannelLayerWrapper
from channels.consumer import _USES_ASYNC_TO_SYNC, SyncConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.worker import ChannelsHooks, Worker
from tests.channels import consumers2 as c
from worker.fetch import Fetch

PREFIX = "interface.response.test!"


class OrmConsumer(c.WebsocketConsumer):
    """Uses the ORM in a handler: fine in a worker's thread, where no event loop runs."""

    def receive(self, text_data=None, bytes_data=None):
        from django.contrib.auth.models import User

        self.send(text_data=str(User.objects.filter(username=text_data).count()))


class Thumbnailer(SyncConsumer):
    done: list = []

    def thumbnail_generate(self, event):
        Thumbnailer.done.append(event["id"])


application = ProtocolTypeRouter({
    "websocket": URLRouter([
        re_path(r"^ws/chat/(?P<room_name>\w+)/$", c.ChatConsumer.as_asgi()),
        path("anon/", c.Seed000ChatConsumer.as_asgi()),
        path("orm/", OrmConsumer.as_asgi()),
        path("broken/", c.Broken.as_asgi()),
        path("echo/", c.AsyncEchoConsumer.as_asgi()),
    ]),
    "channel": ChannelNameRouter({"thumbnails": Thumbnailer.as_asgi()}),
})


class Server:
    """Plays the interface server for connections on the layer."""

    def __init__(self):
        self.layer = ChannelLayerWrapper(ChannelLayer(), "default", [], application)
        self.worker = Worker(self.layer, hooks=ChannelsHooks(), signal_handlers=False)

    def connect(self, path):
        return Connection(self, path)

    def run(self, channel, content):
        self.worker.handle(channel, content)


class Connection:
    def __init__(self, server, path, keeps_state=True):
        self.server, self.path = server, path
        self.reply_channel = server.layer.new_channel(PREFIX)
        self.turn = 0
        self.state = None
        self.keeps_state = keeps_state  # False: an interface server from before answers could leave it out
        self.answer = self.run("websocket.connect", {"headers": [[b"host", b"x"]], "query_string": b"",
                                                      "client": ["1.2.3.4", 5], "server": ["1.1.1.1", 80],
                                                      "order": 0})

    def run(self, channel, extra):
        content = {"reply_channel": self.reply_channel, "path": self.path, **extra}
        if channel != "websocket.connect":
            self.turn += 1
            content.update(turn=self.turn, state=self.state)
            if self.keeps_state:
                content["keeps_state"] = True
        self.server.run(channel, content)
        return self.take()

    def take(self):
        name, message = self.server.layer.receive([PREFIX])
        if message is None:
            return None
        if "state" in message:  # as the interface server: an answer without one leaves it as it was
            self.state = message["state"]
        return message

    def send(self, text):
        return self.run("websocket.receive", {"text": text, "order": self.turn + 1})

    def event(self, event):
        return self.run("websocket.event", {"event": event})


@pytest.fixture
def server():
    s = Server()
    with channel_layers.override("default", s.layer):
        yield s


def texts(answer):
    return [r.get("text") for r in answer["replies"]]


def test_connect_answer_carries_accept_frames_and_state(server):
    conn = server.connect("/anon/")
    assert conn.answer["replies"] == [{"accept": True}, {"text": "[Welcome Anonymous!]"}]
    assert conn.answer["handled"] == 0 and isinstance(conn.answer["state"], bytes)
    named = conn.send("/name ada")
    assert texts(named) == ["[set your username to ada]"] and isinstance(named["state"], bytes)
    answer = conn.send("hi")
    assert texts(answer) == ["ada: hi"] and answer["handled"] == 2
    assert "state" not in answer  # the handler changed nothing: the server's copy stands


def test_a_server_that_does_not_keep_the_state_gets_it_with_every_answer(server):
    conn = Connection(server, "/anon/", keeps_state=False)
    before = conn.state
    answer = conn.send("hi")
    assert texts(answer) == ["Anonymous: hi"] and answer["state"] == before
    conn = Connection(server, "/broken/", keeps_state=False)
    before = conn.state
    answer = conn.send("boom")
    assert answer["replies"] == [{"close": 1011}] and answer["state"] == before


def test_seed_002_group_events_and_async_to_sync_on_the_worker(server):
    _USES_ASYNC_TO_SYNC.clear()
    alice, bob = server.connect("/ws/chat/lobby/"), server.connect("/ws/chat/lobby/")
    # group_send reaches both reply channels before the worker's answer for alice's frame.
    events = [alice.send(json.dumps({"message": "hi"})), server.layer.receive([PREFIX])[1]]
    assert all(e == {"type": "chat_message", "message": "hi"} for e in events)
    answer = alice.take()
    assert answer["replies"] == [] and answer["handled"] == 1
    assert texts(alice.event(events[0])) == [json.dumps({"message": "hi"})]
    assert texts(bob.event(events[1])) == [json.dumps({"message": "hi"})]
    # receive() called async_to_sync: from now on it runs beside the turn's loop, where that is cheap.
    assert (c.ChatConsumer, "websocket_receive") in _USES_ASYNC_TO_SYNC
    assert (c.ChatConsumer, "chat_message") not in _USES_ASYNC_TO_SYNC
    assert alice.send(json.dumps({"message": "again"}))["message"] == "again"
    bob.run("websocket.disconnect", {"code": 1000, "order": 9})
    assert server.layer.group_channels("chat_lobby") == [alice.reply_channel]


def test_orm_works_in_a_sync_handler(server, django_db):
    conn = server.connect("/orm/")
    assert texts(conn.send("nobody")) == ["0"]


def test_async_consumer(server):
    conn = server.connect("/echo/")
    assert texts(conn.send("x")) == ["x"]


def test_a_turns_end_carries_the_workers_next_receive(server):
    conn = server.connect("/echo/")
    waiting = {"reply_channel": conn.reply_channel, "path": "/echo/", "text": "next"}
    server.layer.send("websocket.receive", waiting)
    fetch = Fetch(server.layer, ["websocket.receive"], 1)
    conn.turn += 1
    server.worker.handle("websocket.receive", {"reply_channel": conn.reply_channel, "path": "/echo/", "text": "x",
                                               "order": 1, "turn": conn.turn, "state": conn.state,
                                               "keeps_state": True}, fetch)
    assert texts(conn.take()) == ["x"]
    assert fetch.received == [("websocket.receive", waiting)]


def test_raising_handler_closes_1011_and_keeps_the_last_state(server, caplog):
    conn = server.connect("/broken/")
    before = conn.state
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        answer = conn.send("boom")
    assert answer["replies"] == [{"close": 1011}] and "state" not in answer and conn.state == before
    assert "Broken.receive raised handling websocket.receive" in caplog.text
    assert texts(conn.send("ok")) == ["fine"]  # the worker carries on


def test_unrouted_path_is_refused(server, caplog):
    with caplog.at_level(logging.WARNING, logger="channels.turns"):
        conn = server.connect("/nowhere/")
    assert conn.answer["replies"] == [{"close": True}]
    assert "No route found for path '/nowhere/'" in caplog.text


def test_named_channel_consumer(server):
    assert "thumbnails" in server.worker.channels
    Thumbnailer.done.clear()
    server.run("thumbnails", {"type": "thumbnail.generate", "id": 7})
    assert Thumbnailer.done == [7]


def test_message_without_state_is_dropped_with_a_warning(server, caplog):
    with caplog.at_level(logging.WARNING, logger="channels.turns"):
        server.run("websocket.receive", {"reply_channel": server.layer.new_channel(PREFIX), "path": "/anon/",
                                         "text": "x", "order": 1})
    assert "without a connection state" in caplog.text


def legacy_receive(message, **kwargs):
    message.reply_channel.send({"text": "1.x: " + message.content["text"]})


def test_route_consumers_and_the_application_live_in_one_project():
    from channels.routing import route

    layer = ChannelLayerWrapper(ChannelLayer(), "default", [route("websocket.receive", legacy_receive, path=r"^/old/$")],
                                application)
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    with channel_layers.override("default", layer):
        reply = layer.new_channel(PREFIX)
        worker.handle("websocket.receive", {"reply_channel": reply, "path": "/old/", "text": "hi", "order": 1})
        assert layer.receive([PREFIX])[1] == {"text": "1.x: hi"}
        server = Server.__new__(Server)
        server.layer, server.worker = layer, worker
        conn = server.connect("/anon/")
        assert texts(conn.send("x")) == ["Anonymous: x"]
