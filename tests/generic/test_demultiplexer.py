"""WebsocketDemultiplexer and WebsocketMultiplexer: one socket, several JSON streams."""

from __future__ import annotations

from channels import Group, channel_layers
from channels.generic.websockets import WebsocketMultiplexer
from channels.routing import route_class
from channels.test import ChannelTestCase, WSClient, apply_routes

from . import consumers

ROUTES = [route_class(consumers.Demux)]


class DemultiplexerTests(ChannelTestCase):
    def connect(self, client, path="/"):
        client.send_and_consume("websocket.connect", path=path)
        assert {self.get_next_message("results").content["presence"]} == {"connect"}

    @apply_routes(ROUTES)
    def test_connect_is_forwarded_to_every_stream_then_accepted(self):
        client = WSClient()
        client.send_and_consume("websocket.connect")
        seen = self.get_next_message("results", require=True).content
        assert seen == {"presence": "connect", "stream": "presence"}
        assert set(channel_layers["default"].group_channels("demux")) == {client.reply_channel}
        assert client.receive() is None  # exactly one accept, taken by send_and_consume

    @apply_routes(ROUTES)
    def test_frames_reach_their_stream_and_replies_are_wrapped(self):
        client = WSClient()
        self.connect(client)
        client.send_and_consume("websocket.receive", text={"stream": "echo", "payload": {"n": 1}})
        assert client.receive() == {"stream": "echo", "payload": {"got": {"n": 1}, "multiplexed": True}}
        client.send_and_consume("websocket.receive", text={"stream": "presence", "payload": {"here": True}})
        assert client.receive() == {"stream": "presence", "payload": {"seen": {"here": True}}}

    @apply_routes(ROUTES)
    def test_bad_frames_get_error_frames(self):
        client = WSClient()
        self.connect(client)
        bad = [
            ({"payload": {}}, 'expected an object with "stream" and "payload" keys'),
            ([1, 2], 'expected an object with "stream" and "payload" keys'),
            ({"stream": "nope", "payload": {}}, "unknown stream 'nope' (streams: echo, gate, presence)"),
            ({"stream": "echo", "payload": [1]}, "the payload of stream 'echo' must be an object, not [1]"),
        ]
        for frame, error in bad:
            client.send_and_consume("websocket.receive", text=frame)
            assert client.receive() == {"error": error}
        client.send_and_consume("websocket.receive", text="{bad")
        assert client.receive()["error"].startswith("invalid JSON")

    @apply_routes(ROUTES)
    def test_a_stream_consumer_can_refuse_the_connection(self):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/forbidden/", check_accept=False)
        assert client.receive() == {"close": True}
        assert list(channel_layers["default"].group_channels("demux")) == []

    @apply_routes(ROUTES)
    def test_disconnect_is_forwarded(self):
        client = WSClient()
        self.connect(client)
        client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert self.get_next_message("results").content == {"presence": "disconnect"}

    def test_multiplexer_group_send(self):
        client = WSClient()
        Group("streamers").add(client.reply_channel)
        WebsocketMultiplexer.group_send("streamers", "news", {"headline": "hi"}, close=True)
        expected = {"text": '{"stream": "news", "payload": {"headline": "hi"}}', "close": True}
        assert client.get_next_message(client.reply_channel).content == expected

    def test_demultiplexer_group_send_is_refused(self):
        with self.assertRaisesRegex(TypeError, "WebsocketMultiplexer.group_send"):
            consumers.Demux.group_send("g", {"x": 1})
