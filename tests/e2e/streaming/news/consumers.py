"""Channels 2-4 consumers of the streaming project: written as for Channels 4."""

import json
import os
from pathlib import Path

from channels.consumer import SyncConsumer
from asgiref.sync import async_to_sync
from channels.generic.http import AsyncHttpConsumer


def mark(name):
    """Leave a file the test waits for (it shows a handler ran, and on which worker)."""
    marks = os.environ.get("E2E_MARKS")
    if marks:
        Path(marks, f"{name}.{os.getpid()}").touch()


class ServerSentEventsConsumer(AsyncHttpConsumer):
    """Server-sent events: the response stays open; every group event adds to it."""

    async def handle(self, body):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.sent = 0
        await self.channel_layer.group_add("news_" + self.room, self.channel_name)
        await self.send_headers(headers=[
            (b"Cache-Control", b"no-cache"),
            (b"Content-Type", b"text/event-stream"),
        ])
        await self.send_body(b": open %d\n\n" % os.getpid(), more_body=True)

    async def news_item(self, event):
        self.sent += 1
        payload = json.dumps({"text": event["text"], "n": self.sent, "pid": os.getpid()})
        await self.send_body(f"data: {payload}\n\n".encode(), more_body=not event.get("last"))

    async def disconnect(self):
        await self.channel_layer.group_discard("news_" + self.room, self.channel_name)
        mark(f"{self.room}.disconnect.{self.sent}")


class LongPollConsumer(AsyncHttpConsumer):
    """Channels' documented long poll: the head now, the body when the event comes."""

    async def handle(self, body):
        await self.channel_layer.group_add("news_poll", self.channel_name)
        await self.send_headers(headers=[(b"Content-Type", b"application/json")])

    async def news_item(self, event):
        await self.send_body(json.dumps({"text": event["text"]}).encode())

    async def disconnect(self):
        await self.channel_layer.group_discard("news_poll", self.channel_name)


class FailingConsumer(AsyncHttpConsumer):
    """Raises in handle(), or (``/fail/late/``) in an event handler once its head has gone out."""

    async def handle(self, body):
        if not self.scope["path"].endswith("/late/"):
            raise RuntimeError("handle failed on purpose")
        await self.channel_layer.group_add("news_late", self.channel_name)
        await self.send_headers(headers=[(b"Content-Type", b"text/plain")])
        await self.send_body(b"partial\n", more_body=True)

    async def news_item(self, event):
        raise RuntimeError("news_item failed on purpose")

    async def disconnect(self):
        await self.channel_layer.group_discard("news_late", self.channel_name)
        mark("fail.disconnect." + ("late" if self.scope["path"].endswith("/late/") else "early"))


class TallyConsumer(SyncConsumer):
    """A named channel's consumer: one instance per worker process, counting on itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = 0

    def tally_add(self, event):
        self.count += 1
        async_to_sync(self.channel_layer.group_send)("news_" + event["room"], {
            "type": "news.item", "text": f"{os.getpid()}:{self.count}"})
