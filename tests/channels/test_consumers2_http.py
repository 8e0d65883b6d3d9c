"""The worker's side of Channels 2-4 HTTP consumers (channels.http_turn): AsyncHttpConsumer under "http".

The test plays the interface server on the in-memory layer: it sends the
``http.request``, forwards typed events (``http.event``) and the client's
going away (``http.disconnect``) with the state the previous answer
carried, and reads what the worker sends on the reply channel.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.asgi import get_asgi_application
from django.urls import path, re_path

from asgi_backends.inmemory import ChannelLayer
from channels import channel_layers
from channels.asgi import ChannelLayerWrapper
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.routing import ProtocolTypeRouter, Router, URLRouter
from channels.worker import ChannelsHooks, Worker
from tests.channels import consumers2 as c
from worker.fetch import Fetch

PREFIX = "interface.response.test!"


class Stops(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_headers()
        raise StopConsumer()


class NoEvents(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_headers()
        await self.send_body(b"", more_body=True)


class SendsText(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_headers()
        await self.send({"type": "http.response.body", "body": "text, not bytes"})


django_views = get_asgi_application()

application = ProtocolTypeRouter({
    "http": URLRouter([
        path("json/", c.JsonEcho.as_asgi()),
        re_path(r"^events/(?P<room>\w+)/$", c.ServerSentEvents.as_asgi()),
        path("poll/", c.LongPoll.as_asgi()),
        path("stream/", c.Streamer.as_asgi()),
        re_path(r"^broken/", c.BrokenHttp.as_asgi()),
        path("stops/", Stops.as_asgi()),
        path("noevents/", NoEvents.as_asgi()),
        path("text/", SendsText.as_asgi()),
        re_path(r"", django_views),
    ]),
})


class Server:
    """Plays the interface server for HTTP requests on the layer."""

    def __init__(self, app=application):
        self.layer = ChannelLayerWrapper(ChannelLayer(), "default", [], app)
        self.worker = Worker(self.layer, hooks=ChannelsHooks(), signal_handlers=False)

    def request(self, path, method="GET", body=b"", body_channel=None):
        return Request(self, path, method, body, body_channel)


class Request:
    def __init__(self, server, path, method, body, body_channel):
        self.server, self.path = server, path
        self.reply_channel = server.layer.new_channel(PREFIX)
        self.turn = 0
        self.state = None
        content = {"reply_channel": self.reply_channel, "http_version": "1.1", "method": method, "scheme": "http",
                   "path": path, "query_string": b"", "root_path": "", "headers": [[b"host", b"x"]], "body": body,
                   "client": ["1.2.3.4", 5], "server": ["1.1.1.1", 80]}
        if body_channel is not None:
            content["body_channel"] = body_channel
        server.worker.handle("http.request", content)
        self.messages = self.take()

    def take(self):
        """Everything the worker sent on the reply channel since the last call."""
        messages = []
        while True:
            name, message = self.server.layer.receive([PREFIX])
            if message is None:
                return messages
            assert name == self.reply_channel
            messages.append(message)
            if "state" in message:
                self.state = message["state"]

    def run(self, channel, extra=None):
        self.turn += 1
        content = {"reply_channel": self.reply_channel, "path": self.path, "turn": self.turn, "state": self.state,
                   **(extra or {})}
        self.server.worker.handle(channel, content)
        self.messages = self.take()
        return self.messages

    def event(self, event):
        return self.run("http.event", {"event": event})

    def disconnect(self):
        return self.run("http.disconnect")


def replies(messages):
    return [reply for message in messages for reply in message.get("replies", ())]


@pytest.fixture
def server():
    s = Server()
    with channel_layers.override("default", s.layer):
        yield s


def test_a_whole_response_is_one_message_and_nothing_more(server):
    request = server.request("/json/", "POST", json.dumps({"value": 42}).encode())
    assert request.messages == [{"replies": [{"status": 200, "headers": [[b"Content-Type", b"application/json"]],
                                              "content": b'{"value": 42}', "more_content": False}],
                                 "handled": 0, "end": True}]


def test_the_answer_of_an_http_turn_carries_the_workers_next_receive(server):
    waiting = {"n": "next"}
    server.layer.send("http.request", waiting)
    carried = []

    class RecordingFetch(Fetch):
        def send_batch(self, layer, items):
            results = super().send_batch(layer, items)
            carried.extend(message for _, message in items)
            return results

    reply_channel = server.layer.new_channel(PREFIX)
    fetch = RecordingFetch(server.layer, ["http.request"], 1)
    server.worker.handle("http.request", {
        "reply_channel": reply_channel, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/json/", "query_string": b"", "root_path": "", "headers": [[b"host", b"x"]],
        "body": b'{"value": 1}', "client": ["1.2.3.4", 5], "server": ["1.1.1.1", 80]}, fetch)
    assert fetch.received == [("http.request", waiting)]
    assert [reply["content"] for message in carried for reply in message["replies"]] == [b'{"value": 1}']
    assert server.layer.receive([PREFIX]) == (reply_channel, carried[0])


def test_server_sent_events_stay_open_for_group_events_until_the_last(server):
    c.ServerSentEvents.disconnects.clear()
    request = server.request("/events/news/")
    [opening] = request.messages
    assert opening["replies"] == [{"status": 200, "headers": [[b"Cache-Control", b"no-cache"],
                                                               [b"Content-Type", b"text/event-stream"]],
                                   "content": b": open\n\n", "more_content": True}]
    assert opening["handled"] == 0 and isinstance(opening["state"], bytes) and "end" not in opening
    assert server.layer.group_channels("sse_news") == [request.reply_channel]
    # A group_send from elsewhere lands on the reply channel; the interface server forwards it.
    server.layer.send_group("sse_news", {"type": "news.item", "text": "hello"})
    [event] = request.take()
    assert event == {"type": "news.item", "text": "hello"}
    [answer] = request.event(event)
    assert answer["replies"] == [{"content": b"data: hello #1\n\n", "more_content": True}]
    assert answer["handled"] == 1 and "end" not in answer
    [answer] = request.event({"type": "news.item", "text": "again"})
    assert replies([answer]) == [{"content": b"data: again #2\n\n", "more_content": True}]  # `sent` was kept
    [answer] = request.event({"type": "news.item", "text": "bye", "last": True})
    assert answer == {"replies": [{"content": b"data: bye #3\n\n", "more_content": False}], "handled": 3, "end": True}
    assert c.ServerSentEvents.disconnects == [(request.reply_channel, 3)]
    assert server.layer.group_channels("sse_news") == []


def test_a_client_gone_mid_stream_runs_disconnect_with_the_kept_state(server):
    c.ServerSentEvents.disconnects.clear()
    request = server.request("/events/gone/")
    request.event({"type": "news.item", "text": "one"})
    assert request.disconnect() == []  # the interface server has forgotten the request
    assert c.ServerSentEvents.disconnects == [(request.reply_channel, 1)]
    assert server.layer.group_channels("sse_gone") == []


def test_long_poll_holds_the_head_in_the_state_until_the_event_sends_the_body(server):
    request = server.request("/poll/")
    assert request.messages == [{"replies": [], "handled": 0, "state": request.state}]  # nothing for the client yet
    [answer] = request.event({"type": "poll.result", "data": {"n": 1}})
    assert answer["replies"] == [{"status": 200, "headers": [[b"Content-Type", b"application/json"]],
                                  "content": b'{"n": 1}', "more_content": False}]
    assert answer["end"] is True and server.layer.group_channels("poll") == []


def test_a_handler_that_waits_between_chunks_sends_each_chunk_when_it_waits(server):
    request = server.request("/stream/")
    assert [replies([m]) for m in request.messages] == [
        [{"status": 200, "headers": [[b"Content-Type", b"text/plain"]], "content": b"chunk 0\n", "more_content": True}],
        [{"content": b"chunk 1\n", "more_content": True}],
        [{"content": b"chunk 2\n", "more_content": True}],
        [{"content": b"done\n", "more_content": False}],
    ]
    assert request.messages[-1]["end"] is True and "handled" not in request.messages[0]


def test_django_views_behind_the_router_answer_as_the_view_path_does(server):
    request = server.request("/")
    assert request.messages == [{"status": 200, "headers": request.messages[0]["headers"], "content": b"OK",
                                 "more_content": False}]


def test_a_body_channel_is_read_by_the_consumer_or_left_to_the_views(server):
    layer = server.layer
    for target, expected in (("/json/", b'{"value": 7}'), ("/echo/", None)):
        body = json.dumps({"value": 7, "pad": "x" * 20}).encode()
        channel = layer.new_channel("http.request.body?")
        layer.send(channel, {"content": body[10:], "more_content": False})
        request = server.request(target, "POST", body[:10], body_channel=channel)
        if expected is not None:
            assert replies(request.messages)[0]["content"] == expected
        else:  # Django's echo view: it saw the whole body (its length is the 10th field)
            assert request.messages[0]["content"].split(b"|")[9] == str(len(body)).encode()


def test_a_body_that_stops_coming_is_answered_408(server):
    from channels.application import ApplicationConsumer
    from channels.message import Message

    backend = server.layer.channel_layer
    reply = backend.new_channel(PREFIX)
    content = {"reply_channel": reply, "method": "POST", "path": "/json/", "headers": [], "body": b"{",
               "body_channel": backend.new_channel("http.request.body?")}
    ApplicationConsumer(application, body_timeout=0.2)(Message(content, "http.request", backend))
    [answer] = [backend.receive([PREFIX])[1]]
    assert answer["replies"][0]["status"] == 408 and answer["end"] is True


def test_a_raising_handle_answers_500_runs_disconnect_and_the_worker_carries_on(server, caplog):
    c.BrokenHttp.cleaned.clear()
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        request = server.request("/broken/")
    assert request.messages == [{"replies": [{"status": 500, "headers": [[b"content-type", b"text/plain; charset=utf-8"]],
                                              "content": b"Internal Server Error", "more_content": False}],
                                 "handled": 0, "end": True}]
    record = next(r for r in caplog.records if "raised" in r.getMessage())
    assert "BrokenHttp.handle raised handling http.request; answering 500 to /broken/ (" in record.getMessage()
    assert record.exc_info is not None
    assert c.BrokenHttp.cleaned == ["handle"]
    assert replies(server.request("/json/", "POST", b'{"value": 1}').messages)[0]["status"] == 200


def test_a_handler_failing_after_the_head_went_out_aborts_the_response(server, caplog):
    c.BrokenHttp.cleaned.clear()
    request = server.request("/broken/late/")
    assert replies(request.messages)[0]["content"] == b"partial"
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        [answer] = request.event({"type": "boom"})
    # What the failed handler sent never leaves; the 500 head tells the interface server to cut the response.
    assert [r["status"] for r in answer["replies"]] == [500] and answer["end"] is True
    assert "BrokenHttp.boom raised handling boom; aborting the response to /broken/late/" in caplog.text
    assert c.BrokenHttp.cleaned == ["handle"]  # disconnect() ran on the failing instance, with the kept state


def test_an_event_without_a_handler_is_an_error_naming_type_and_class(server, caplog):
    request = server.request("/noevents/")
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        [answer] = request.event({"type": "chat.message"})
    assert answer["end"] is True and answer["replies"][0]["status"] == 500
    assert "NoEvents has no handler for message type 'chat.message'" in caplog.text
    assert "aborting the response to /noevents/" in caplog.text


def test_stopping_before_the_response_is_complete_is_a_500(server, caplog):
    with caplog.at_level(logging.ERROR, logger="channels.http_turn"):
        request = server.request("/stops/")
    assert replies(request.messages)[0]["status"] == 500
    assert "Stops stopped before completing its response; answering 500 to /stops/" in caplog.text


def test_a_body_that_is_not_bytes_is_a_500_naming_the_consumer(server, caplog):
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        request = server.request("/text/")
    assert replies(request.messages)[0]["status"] == 500
    assert "SendsText.handle raised" in caplog.text and "body must be bytes, not str" in caplog.text


def test_an_unrouted_path_is_404():
    app = ProtocolTypeRouter({"http": URLRouter([path("json/", c.JsonEcho.as_asgi())])})
    s = Server(app)
    with channel_layers.override("default", s.layer):
        assert replies(s.request("/nowhere/").messages)[0]["status"] == 404


def test_a_disconnect_without_state_is_dropped_quietly(server, caplog):
    with caplog.at_level(logging.DEBUG, logger="channels.application"):
        server.worker.handle("http.disconnect", {"reply_channel": server.layer.new_channel(PREFIX), "path": "/"})
    assert "Dropping a http.disconnect message" in caplog.text
    assert all(r.levelno < logging.WARNING for r in caplog.records)


def test_only_an_application_routing_http_itself_gets_http_events():
    views_only = Router([], application=ProtocolTypeRouter({"http": django_views}))
    assert "http.request" in views_only.channels and "http.event" not in views_only.channels
    assert "http.disconnect" not in views_only.channels
    assert {"http.request", "http.event", "http.disconnect"} <= Router([], application=application).channels
