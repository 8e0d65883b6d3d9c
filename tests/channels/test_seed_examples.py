"""The Getting Started chats, run by a real worker thread pool on the in-memory layer."""

from __future__ import annotations

import pytest
from django.test import Client

from channels.routing import Router, route
from channels.worker import Worker
from tests.channels import seed_consumers as seed


def replies(layer, prefix, count, timeout=5.0):
    """Collect ``count`` messages from a reply-channel prefix, as the interface server would."""
    got = []
    while len(got) < count:
        channel, content = layer.receive([prefix], block=True)
        if channel is None:
            raise AssertionError(f"only {got} after waiting")
        got.append((channel, content))
    return got


@pytest.fixture
def worker_for(layer):
    started = []

    def start(routing):
        layer.router = Router(routing)
        worker = Worker(layer, threads=3, signal_handlers=False)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        worker.join(5)


def test_groups_chat(layer, worker_for):
    worker_for([
        route("websocket.connect", seed.ws_add),
        route("websocket.receive", seed.ws_message),
        route("websocket.disconnect", seed.ws_disconnect),
    ])
    for n in (1, 2):
        layer.send("websocket.connect", {"reply_channel": f"ws!tab{n}", "path": "/chat/", "order": 0})
    # The consumer never accepts: the worker does (0.x behaviour the guide relies on).
    assert sorted(replies(layer, "ws!", 2)) == [("ws!tab1", {"accept": True}), ("ws!tab2", {"accept": True})]
    layer.send("websocket.receive", {"reply_channel": "ws!tab1", "path": "/chat/", "text": "hello world", "order": 1})
    assert sorted(replies(layer, "ws!", 2)) == [("ws!tab1", {"text": "[user] hello world"}),
                                               ("ws!tab2", {"text": "[user] hello world"})]


def collect_until(layer, prefix, wanted, timeout=10.0):
    """Receive from ``prefix`` until every (channel, content) in ``wanted`` was seen; return all seen."""
    import time

    seen = []
    deadline = time.monotonic() + timeout
    while not all(item in seen for item in wanted):
        if time.monotonic() > deadline:
            raise AssertionError(f"missing {[w for w in wanted if w not in seen]}; saw {seen}")
        channel, content = layer.receive([prefix], block=True)
        if channel is not None:
            seen.append((channel, content))
    return seen


def test_first_letter_chat_with_ordering(layer, worker_for, django_db):
    worker_for([
        route("websocket.connect", seed.ordered_ws_add),
        route("websocket.receive", seed.ordered_ws_message),
        route("websocket.disconnect", seed.ordered_ws_disconnect),
    ])
    cookies = {}
    for name in ("anna", "andy", "bob"):
        key = Client().get(f"/login/{name}/").content.decode()
        cookies[name] = [[b"cookie", f"sessionid={key}".encode()]]

    def receive(name, text):
        return {"reply_channel": f"ws!{name}", "path": "/", "text": text, "order": 1}

    # anna's first message is sent before her connect: it waits for it (slight ordering).
    layer.send("websocket.receive", receive("anna", "early"))
    for name in ("anna", "andy", "bob"):
        layer.send("websocket.connect", {"reply_channel": f"ws!{name}", "path": "/", "headers": cookies[name],
                                         "query_string": b"", "order": 0})
    accept = {"accept": True}
    seen = collect_until(layer, "ws!", [("ws!anna", accept), ("ws!andy", accept), ("ws!bob", accept),
                                        ("ws!anna", receive("anna", "early"))])
    layer.send("websocket.receive", receive("bob", "b only"))
    layer.send("websocket.receive", receive("andy", "a team"))
    seen += collect_until(layer, "ws!", [("ws!bob", receive("bob", "b only")),
                                         ("ws!anna", receive("andy", "a team")),
                                         ("ws!andy", receive("andy", "a team"))])
    to_bob = [content for channel, content in seen if channel == "ws!bob"]
    assert to_bob == [accept, receive("bob", "b only")]  # the b group hears only bob
