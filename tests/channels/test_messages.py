"""Channel, Group, Message and the outbox (sends held until a consumer returns)."""

from __future__ import annotations

import pytest

from channels import Channel, Group
from channels.exceptions import ConsumeLater, DenyConnection
from channels.routing import Router, route
from tests.channels.helpers import dispatch, drain, message


def test_message_attributes(layer):
    msg = message(layer, "websocket.receive", reply_channel="websocket.send!abc", text="hi")
    assert msg.channel.name == "websocket.receive"
    assert msg.reply_channel.name == "websocket.send!abc"
    assert msg.channel_layer is layer
    assert msg["text"] == "hi" and msg.get("missing", 5) == 5 and "text" in msg
    copy = msg.copy()
    copy["text"] = "changed"
    assert msg["text"] == "hi"
    assert message(layer, "x").reply_channel is None


def test_send_outside_a_consumer_is_immediate(layer):
    Channel("plain").send({"a": 1})
    assert drain(layer, "plain") == [{"a": 1}]
    with pytest.raises(TypeError, match="dict"):
        Channel("plain").send("text")
    with pytest.raises(TypeError, match="dict"):
        Group("g").send(["list"])


def test_group_add_send_discard(layer):
    Group("chat").add(Channel("a!1"))
    Group("chat").add("a!2")
    Group("chat").send({"text": "all"})
    assert sorted(m["text"] for m in drain(layer, "a!")) == ["all", "all"]
    Group("chat").discard("a!1")
    assert layer.group_channels("chat") == ["a!2"]


def test_sends_are_held_until_the_consumer_returns(layer):
    seen_during = []

    def consumer(message):
        Channel("out").send({"n": 1})
        Group("watchers").send({"n": 2})
        Channel("now").send({"n": 3}, immediately=True)
        seen_during.append((drain(layer, "out"), drain(layer, "now")))

    Group("watchers").add("w!1")
    layer.router = Router([route("work", consumer)])
    dispatch(layer, "work", {})
    assert seen_during == [([], [{"n": 3}])]
    assert drain(layer, "out") == [{"n": 1}]
    assert drain(layer, "w!") == [{"n": 2}]


def test_a_failing_consumer_sends_nothing_and_http_gets_500(layer):
    def consumer(message):
        Channel("out").send({"n": 1})
        raise RuntimeError("broken")

    layer.router = Router([route("http.request", consumer)])
    dispatch(layer, "http.request", {"reply_channel": "http.response!x", "path": "/"})
    assert drain(layer, "out") == []
    [reply] = drain(layer, "http.response!")
    assert reply["status"] == 500 and reply["more_content"] is False


def test_consume_later_discards_sends_and_requeues(layer):
    runs = []

    def consumer(message):
        runs.append(message.content.get("__retries__", 0))
        Channel("out").send({"n": len(runs)})
        if len(runs) < 3:
            raise ConsumeLater()

    layer.router = Router([route("later", consumer)])
    from channels.worker import Worker

    worker = Worker(layer, threads=1, signal_handlers=False)
    worker.start()
    try:
        layer.send("later", {"x": 1})
        channel, content = layer.receive(["out"], block=True)
        assert content == {"n": 3}
        assert runs == [0, 1, 2]
        assert drain(layer, "out") == []
    finally:
        worker.stop()
        assert worker.join(5)


def test_unanswered_connect_is_accepted_and_answered_connect_is_not(layer):
    def silent(message):
        Group("room").add(message.reply_channel)

    def rejecting(message):
        message.reply_channel.send({"accept": False})

    def denying(message):
        raise DenyConnection()

    layer.router = Router([
        route("websocket.connect", silent, path=r"^/silent"),
        route("websocket.connect", rejecting, path=r"^/reject"),
        route("websocket.connect", denying, path=r"^/deny"),
    ])
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!1", "path": "/silent", "order": 0})
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!2", "path": "/reject", "order": 0})
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!3", "path": "/deny", "order": 0})
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!4", "path": "/unrouted", "order": 0})
    replies = {}
    while True:
        name, content = layer.receive(["ws!"])
        if name is None:
            break
        replies.setdefault(name, []).append(content)
    assert replies == {
        "ws!1": [{"accept": True}],
        "ws!2": [{"accept": False}],
        "ws!3": [{"close": True}],
        "ws!4": [{"accept": True}],
    }


def test_a_failing_connect_consumer_refuses_the_handshake(layer):
    def broken(message):
        message.reply_channel.send({"accept": True})
        raise RuntimeError("broken connect")

    layer.router = Router([route("websocket.connect", broken)])
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!9", "path": "/", "order": 0})
    assert drain(layer, "ws!") == [{"close": True}]


def test_auto_accept_can_be_turned_off(layer):
    from channels.worker import ChannelsHooks, Worker

    layer.router = Router([route("websocket.connect", lambda message: None)])
    Worker(layer, hooks=ChannelsHooks(auto_accept=False), signal_handlers=False).handle(
        "websocket.connect", {"reply_channel": "ws!1", "path": "/", "order": 0})
    assert drain(layer, "ws!") == []


def test_accept_goes_out_before_the_consumers_frames(layer):
    def greeter(message):
        Group("lobby").add(message.reply_channel)
        Group("lobby").send({"text": "welcome"})

    layer.router = Router([route("websocket.connect", greeter)])
    dispatch(layer, "websocket.connect", {"reply_channel": "ws!1", "path": "/", "order": 0})
    # The consumer only reached the socket through a group, so the accept is
    # added, and it is sent before the group's frame.
    assert drain(layer, "ws!") == [{"accept": True}, {"text": "welcome"}]


def test_a_reply_channels_repr_does_not_carry_its_whole_name(layer):
    from channels.generic.websockets import WebsocketMultiplexer

    name = "websocket.send!a1b2c3d4e5f6a7b8"
    assert "a1b2c3d4e5f6" not in repr(Channel(name)) and "websocket.send!a1b2" in repr(Channel(name))
    assert repr(Channel("http.request")) == "<Channel http.request>"
    assert "a1b2c3d4e5f6" not in repr(WebsocketMultiplexer("stream", Channel(name)))
