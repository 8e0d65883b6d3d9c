"""Channels 2-4 consumers used by the tests: the seeds' ChatConsumers, typed in as the seeds show them, and a few more."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)


class Seed000ChatConsumer(WebsocketConsumer):
    """Seed 000's ChatConsumer, verbatim."""

    def connect(self):
        self.username = "Anonymous"
        self.accept()
        self.send(text_data="[Welcome %s!]" % self.username)

    def receive(self, *, text_data):
        if text_data.startswith("/name"):
            self.username = text_data[5:].strip()
            self.send(text_data="[set your username to %s]" % self.username)
        else:
            self.send(text_data=self.username + ": " + text_data)

    def disconnect(self, message):
        pass


class ChatConsumer(WebsocketConsumer):
    """Seed 002's ChatConsumer, verbatim."""

    def connect(self):
        self.room_name = self.scope['url_route']['kwargs']['room_name']
        self.room_group_name = 'chat_%s' % self.room_name

        # Join room group
        async_to_sync(self.channel_layer.group_add)(
            self.room_group_name,
            self.channel_name
        )

        self.accept()

    def disconnect(self, close_code):
        # Leave room group
        async_to_sync(self.channel_layer.group_discard)(
            self.room_group_name,
            self.channel_name
        )

    # Receive message from WebSocket
    def receive(self, text_data):
        text_data_json = json.loads(text_data)
        message = text_data_json['message']

        # Send message to room group
        async_to_sync(self.channel_layer.group_send)(
            self.room_group_name,
            {
                'type': 'chat_message',
                'message': message
            }
        )

    # Receive message from room group
    def chat_message(self, event):
        message = event['message']

        # Send message to WebSocket
        self.send(text_data=json.dumps({
            'message': message
        }))


class AsyncChatConsumer(AsyncWebsocketConsumer):
    """The async twin of seed 002's consumer (Channels' tutorial part 3)."""

    async def connect(self):
        self.room_group_name = "chat_%s" % self.scope["url_route"]["kwargs"]["room_name"]
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data):
        message = json.loads(text_data)["message"]
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"message": event["message"]}))


class EchoConsumer(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)


class AsyncEchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class GroupsConsumer(JsonWebsocketConsumer):
    """Joins ``groups`` on connect; counts what it received; sends typed events back as JSON."""

    groups = ["everyone"]

    def connect(self):
        self.count = 0
        self.accept()

    def receive_json(self, content, **kwargs):
        self.count += 1
        if content.get("close"):
            self.close(code=4001)
        else:
            self.send_json({"count": self.count, "echo": content})

    def news_item(self, event):
        self.send_json({"news": event["text"], "count": self.count})


class AsyncJsonCounter(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.seen = []
        await self.accept("chat.v2" if "chat.v2" in self.scope["subprotocols"] else None)

    async def receive_json(self, content, **kwargs):
        self.seen.append(content)
        await self.send_json({"seen": self.seen, "user": str(self.scope.get("user", "-"))})


class Refuser(WebsocketConsumer):
    def connect(self):
        self.close()


class Broken(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        if text_data == "boom":
            raise RuntimeError("kaboom")
        self.send(text_data="fine")


class KeepsASocket(WebsocketConsumer):
    def connect(self):
        import threading

        self.lock = threading.Lock()  # cannot be packed: missing on the next event
        self.name = "kept"
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=f"{self.name} {hasattr(self, 'lock')}")


class Greeter(WebsocketConsumer):
    greeting = "hello"

    def connect(self):
        self.accept()
        self.send(text_data=f"{self.greeting} {self.scope['url_route']['kwargs'].get('who', '?')}")


# -- HTTP consumers ---------------------------------------------------------------------


class JsonEcho(AsyncHttpConsumer):
    """Channels 4's test consumer: answers the posted JSON's value."""

    async def handle(self, body):
        data = json.loads(body.decode("utf-8"))
        await self.send_response(200, json.dumps({"value": data["value"]}).encode("utf-8"),
                                 headers={b"Content-Type": b"application/json"})


class ServerSentEvents(AsyncHttpConsumer):
    """The SSE pattern: headers and an open body in handle(), group events push more of it."""

    async def handle(self, body):
        self.group = "sse_" + self.scope["url_route"]["kwargs"].get("room", "lobby")
        self.sent = 0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_headers(headers=[(b"Cache-Control", b"no-cache"), (b"Content-Type", b"text/event-stream")])
        await self.send_body(b": open\n\n", more_body=True)

    async def news_item(self, event):
        self.sent += 1
        await self.send_body(f"data: {event['text']} #{self.sent}\n\n".encode(), more_body=not event.get("last"))

    async def disconnect(self):
        marks = self.__class__.disconnects
        marks.append((self.channel_name, getattr(self, "sent", None)))
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    disconnects: list = []


class LongPoll(AsyncHttpConsumer):
    """Channels' documented long poll: headers now, the body when an event comes."""

    async def handle(self, body):
        await self.channel_layer.group_add("poll", self.channel_name)
        await self.send_headers(headers=[(b"Content-Type", b"application/json")])

    async def poll_result(self, event):
        await self.send_body(json.dumps(event["data"]).encode())

    async def disconnect(self):
        await self.channel_layer.group_discard("poll", self.channel_name)


class Streamer(AsyncHttpConsumer):
    """Streams from one handler, waiting between chunks (each chunk leaves when the handler waits)."""

    async def handle(self, body):
        import asyncio

        await self.send_headers(headers=[(b"Content-Type", b"text/plain")])
        for n in range(3):
            await self.send_body(b"chunk %d\n" % n, more_body=True)
            await asyncio.sleep(0)
        await self.send_body(b"done\n")


class BrokenHttp(AsyncHttpConsumer):
    """Raises before answering, or after its head went out (``/broken/late/``)."""

    cleaned: list = []

    async def handle(self, body):
        self.stage = "handle"
        if self.scope["path"].endswith("/late/"):
            await self.send_headers()
            await self.send_body(b"partial", more_body=True)
            return
        raise RuntimeError("handle failed on purpose")

    async def boom(self, event):
        await self.send_body(b" never seen", more_body=True)
        raise RuntimeError("event handler failed on purpose")

    async def disconnect(self):
        BrokenHttp.cleaned.append(getattr(self, "stage", None))
