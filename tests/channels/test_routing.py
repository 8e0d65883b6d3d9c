"""Routing: filters, named groups, includes, dotted paths, defaults."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from channels.routing import Router, include, route, route_class
from tests.channels.helpers import message

calls: list = []


def consumer_a(message, **kwargs):
    calls.append(("a", kwargs))


def consumer_b(message, **kwargs):
    calls.append(("b", kwargs))


class ClassConsumer:
    @classmethod
    def channel_names(cls):
        return {"custom.one", "custom.two"}

    def __init__(self, message, **kwargs):
        calls.append(("class", kwargs))


dotted_routing = [route("websocket.receive", "tests.channels.test_routing.consumer_b")]


def test_route_filters_pass_named_groups_as_kwargs(layer):
    router = Router([route("http.request", consumer_a, path=r"^/poll/(?P<id>\d+)/$", method=r"^POST$")])
    assert router.match(message(layer, "http.request", path="/poll/12/", method="POST")) == (consumer_a, {"id": "12"})
    # Method filter fails: falls through to the default Django view consumer.
    consumer, kwargs = router.match(message(layer, "http.request", path="/poll/12/", method="GET"))
    assert consumer is not consumer_a and type(consumer).__name__ == "LazyViewConsumer"


def test_first_matching_route_wins_and_missing_key_does_not_match(layer):
    router = Router([
        route("websocket.connect", consumer_a, path=r"^/a/"),
        route("websocket.connect", consumer_b),
    ], defaults=False)
    assert router.match(message(layer, "websocket.connect", path="/a/x"))[0] is consumer_a
    assert router.match(message(layer, "websocket.connect", path="/b/x"))[0] is consumer_b
    assert router.match(message(layer, "websocket.connect"))[0] is consumer_b
    assert router.match(message(layer, "other.channel")) is None


def test_include_prefixes_are_joined(layer):
    chat = [
        route("websocket.connect", consumer_a, path=r"^/(?P<room>[a-zA-Z0-9_]+)/$"),
        route("websocket.disconnect", consumer_b),
    ]
    router = Router([include(chat, path=r"^/chat")], defaults=False)
    assert router.match(message(layer, "websocket.connect", path="/chat/lobby/")) == (consumer_a, {"room": "lobby"})
    assert router.match(message(layer, "websocket.connect", path="/lobby/")) is None
    assert router.match(message(layer, "websocket.disconnect", path="/chat/x/"))[0] is consumer_b
    assert router.match(message(layer, "websocket.disconnect", path="/other/")) is None


def test_nested_includes_and_prefix_groups(layer):
    inner = [route("websocket.receive", consumer_a, path=r"^/(?P<room>\w+)/$")]
    middle = [include(inner, path=r"^/chat")]
    router = Router([include(middle, path=r"^/(?P<site>\w+)")], defaults=False)
    assert router.match(message(layer, "websocket.receive", path="/s1/chat/r1/")) == (
        consumer_a, {"site": "s1", "room": "r1"})


def test_include_refuses_to_join_patterns_without_caret():
    with pytest.raises(ImproperlyConfigured, match="both must start with '\\^'"):
        Router([include([route("websocket.connect", consumer_a, path=r"/room/$")], path=r"^/chat")])
    with pytest.raises(ImproperlyConfigured, match="'/chat'"):
        Router([include([route("websocket.connect", consumer_a, path=r"^/room/$")], path=r"/chat")])


def test_unnamed_groups_are_rejected():
    with pytest.raises(ValueError, match="unnamed groups"):
        route("http.request", consumer_a, path=r"^/(\d+)/$")


def test_dotted_paths_for_consumers_and_routing(layer):
    router = Router([
        route("http.request", "tests.channels.test_routing.consumer_a"),
        include("tests.channels.test_routing.dotted_routing"),
    ])
    assert router.match(message(layer, "http.request", path="/"))[0] is consumer_a
    assert router.match(message(layer, "websocket.receive", path="/"))[0] is consumer_b


def test_bad_dotted_paths_name_the_value():
    with pytest.raises(ImproperlyConfigured, match="tests.channels.nope.consumer"):
        route("http.request", "tests.channels.nope.consumer")
    with pytest.raises(ImproperlyConfigured, match="tests.channels.test_routing.missing"):
        Router("tests.channels.test_routing.missing")
    with pytest.raises(ImproperlyConfigured, match="must be a list"):
        Router(42)


def test_route_class_uses_channel_names(layer):
    router = Router([route_class(ClassConsumer, path=r"^/x")], defaults=False)
    assert router.channels == {"custom.one", "custom.two"}
    assert router.match(message(layer, "custom.two", path="/xy"))[0] is ClassConsumer
    with pytest.raises(ValueError, match="channel_names"):
        route_class(consumer_a)


def test_defaults_and_channels_set(layer):
    router = Router([route("chat-messages", consumer_a)])
    assert router.channels == {"chat-messages", "http.request", "websocket.connect",
                               "websocket.receive", "websocket.disconnect"}
    assert Router([], defaults=False).channels == set()


def test_dict_routing_and_process_specific_channels(layer):
    router = Router({"task.run!": consumer_a}, defaults=False)
    assert router.match(message(layer, "task.run!abc"))[0] is consumer_a


def test_non_string_values_do_not_match(layer):
    router = Router([route("x", consumer_a, order=r"^1$")], defaults=False)
    assert router.match(message(layer, "x", order=1)) is None
    assert router.match(message(layer, "x", order="1")) == (consumer_a, {})
