"""Consumers under test (module level, so routes can name them by dotted path too)."""

from __future__ import annotations

from channels import Channel
from channels.exceptions import DenyConnection
from channels.generic import BaseConsumer
from channels.generic.http import HttpConsumer
from channels.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
)


class Recorder(BaseConsumer):
    """Reports what it saw on a ``results`` channel."""

    method_mapping = {"thing.a": "on_a", "thing.b": "on_b"}

    def on_a(self, message, **kwargs):
        Channel("results").send({"handler": "a", "kwargs": kwargs, "value": message["value"]})

    def on_b(self, message, **kwargs):
        Channel("results").send({"handler": "b", "kwargs": kwargs})


class SessionCounter(BaseConsumer):
    method_mapping = {"count": "count"}
    channel_session = True

    def count(self, message, **kwargs):
        message.channel_session["n"] = message.channel_session.get("n", 0) + 1
        Channel("results").send({"n": message.channel_session["n"]})


class SessionUser(BaseConsumer):
    method_mapping = {"whoami": "whoami"}
    channel_session_user = True

    def whoami(self, message, **kwargs):
        Channel("results").send({"user": str(message.user), "session": hasattr(message, "channel_session")})


class Echo(WebsocketConsumer):
    groups = ["everyone"]

    def connection_groups(self, room="lobby", **kwargs):
        return [*self.groups, f"room-{room}"]

    def receive(self, text=None, bytes=None, **kwargs):
        if text == "close":
            self.close(4000)
        elif text == "broadcast":
            self.group_send("everyone", text="to all")
        elif text is not None:
            self.send(text=f"{text}|{kwargs.get('room', '-')}")
        else:
            self.send(bytes=bytes[::-1])

    def disconnect(self, message, **kwargs):
        Channel("results").send({"disconnected": message["code"]})


class Picky(WebsocketConsumer):
    groups = ["picky"]

    def connect(self, message, **kwargs):
        if message.get("query_string") != b"ok=1":
            raise DenyConnection
        self.accept()


class Broken(WebsocketConsumer):
    groups = ["broken"]

    def connect(self, message, **kwargs):
        raise RuntimeError("a bug in connect")


class HttpUser(WebsocketConsumer):
    http_user = True

    def connect(self, message, **kwargs):
        self.accept()
        self.send(text=f"hello {message.user}")

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=f"{text} from {self.message.user}")


class HttpUserAndSession(WebsocketConsumer):
    http_user_and_session = True

    def receive(self, text=None, bytes=None, **kwargs):
        session = self.message.http_session
        self.send(text=f"{self.message.user} {session.get('colour') if session is not None else None}")


class Strict(WebsocketConsumer):
    strict_ordering = True

    def receive(self, text=None, bytes=None, **kwargs):
        Channel("results").send({"text": text})


class Slight(Strict):
    strict_ordering = False
    slight_ordering = True

    def connect(self, message, **kwargs):
        Channel("results").send({"text": "connected"})
        self.accept()


class Both(Strict):
    slight_ordering = True


class Json(JsonWebsocketConsumer):
    groups = ["json"]

    def receive(self, content, **kwargs):
        if content == "shout":
            self.group_send("json", {"shout": True})
        else:
            self.send({"got": content, "multiplexed": self.multiplexer is not None})


class StrictJson(Json):
    close_on_invalid_frame = True


class Sorted(JsonWebsocketConsumer):
    """Custom encoding hooks: keys sorted, and frames wrapped in a ``data`` key."""

    @classmethod
    def encode_json(cls, content):
        import json

        return json.dumps({"data": content}, sort_keys=True)

    @classmethod
    def decode_json(cls, text):
        import json

        return json.loads(text)["data"]

    def receive(self, content, **kwargs):
        self.send({"b": content, "a": 1})


class Presence(JsonWebsocketConsumer):
    def connect(self, message, **kwargs):
        Channel("results").send({"presence": "connect", "stream": kwargs["multiplexer"].stream})

    def receive(self, content, **kwargs):
        kwargs["multiplexer"].send({"seen": content})

    def disconnect(self, message, **kwargs):
        Channel("results").send({"presence": "disconnect"})


class Gatekeeper(JsonWebsocketConsumer):
    def connect(self, message, **kwargs):
        if message.get("path") == "/forbidden/":
            raise DenyConnection


class Demux(WebsocketDemultiplexer):
    groups = ["demux"]
    consumers = {"echo": Json, "presence": Presence, "gate": Gatekeeper}


class Status(HttpConsumer):
    def handle(self, body, **kwargs):
        if self.request.method == "POST":
            self.send_response({"body": body.decode(), "kwargs": kwargs}, status=201)
        else:
            super().handle(body, **kwargs)


class Whoami(HttpConsumer):
    http_user = True

    def handle(self, body, **kwargs):
        self.send_response(f"user={self.message.user}", headers={"X-Seen": "yes"})
