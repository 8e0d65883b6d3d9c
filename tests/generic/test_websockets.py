"""WebsocketConsumer and JsonWebsocketConsumer: handlers, sending, groups, user/session and ordering flags."""

from __future__ import annotations

from django.contrib.auth.models import User

from channels import channel_layers
from channels.routing import route_class
from channels.test import ChannelTestCase, WSClient, apply_routes

from . import consumers


def members(group):
    return set(channel_layers["default"].group_channels(group))


class WebsocketConsumerTests(ChannelTestCase):
    def test_connect_accepts_and_joins_connection_groups(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Echo, path=r"^/(?P<room>\w+)/$")]):
            client.send_and_consume("websocket.connect", path="/kitchen/")
        assert members("everyone") == {client.reply_channel}
        assert members("room-kitchen") == {client.reply_channel}

    def test_receive_text_and_bytes_and_send_back(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Echo, path=r"^/(?P<room>\w+)/$")]):
            client.send_and_consume("websocket.connect", path="/hall/")
            client.send_and_consume("websocket.receive", text="hi", path="/hall/")
            assert client.receive() == "hi|hall"
            client.send_and_consume("websocket.receive", {"bytes": b"\x00\x01\x02"}, path="/hall/")
            assert client.receive() == {"bytes": b"\x02\x01\x00"}

    def test_close_with_a_code(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Echo)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="close")
        assert client.receive() == {"close": 4000}

    def test_group_send_reaches_every_member(self):
        alice, bob = WSClient(), WSClient()
        with apply_routes([route_class(consumers.Echo)]):
            alice.send_and_consume("websocket.connect")
            bob.send_and_consume("websocket.connect")
            alice.send_and_consume("websocket.receive", text="broadcast")
        assert alice.receive() == "to all"
        assert bob.receive() == "to all"

    def test_disconnect_leaves_groups_and_calls_disconnect(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Echo, path=r"^/(?P<room>\w+)/$")]):
            client.send_and_consume("websocket.connect", path="/den/")
            client.send_and_consume("websocket.disconnect", {"code": 1001}, path="/den/")
        assert members("everyone") == set() and members("room-den") == set()
        assert self.get_next_message("results", require=True).content == {"disconnected": 1001}

    def test_deny_connection_rejects_and_leaves_the_groups(self):
        refused, welcome = WSClient(), WSClient()
        with apply_routes([route_class(consumers.Picky)]):
            refused.send_and_consume("websocket.connect", check_accept=False)
            welcome.send_and_consume("websocket.connect", path="/?ok=1")
        assert refused.receive() == {"close": True}
        assert members("picky") == {welcome.reply_channel}

    def test_a_failing_connect_leaves_the_groups_too(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Broken)]):
            with self.assertRaisesRegex(RuntimeError, "a bug in connect"):
                client.send_and_consume("websocket.connect", check_accept=False)
        assert members("broken") == set()

    def test_check_accept_fails_a_rejected_connect(self):
        with apply_routes([route_class(consumers.Picky)]):
            with self.assertRaisesRegex(AssertionError, "not accepted"):
                WSClient().send_and_consume("websocket.connect")

    def test_send_needs_something_to_send(self):
        from channels.generic.websockets import frame

        with self.assertRaisesRegex(ValueError, "Nothing to send"):
            frame()
        with self.assertRaisesRegex(ValueError, "not both"):
            frame("a", b"b")
        with self.assertRaisesRegex(TypeError, "must be a str"):
            frame(text=b"bytes")
        assert frame(close=True) == {"close": True}

    def test_connection_groups_must_be_a_list(self):
        class Stringy(consumers.Echo):
            def connection_groups(self, **kwargs):
                return "oops"

        with apply_routes([route_class(Stringy)]):
            with self.assertRaisesRegex(TypeError, "list of names"):
                WSClient().send_and_consume("websocket.connect")


class UserAndSessionTests(ChannelTestCase):
    def setUp(self):
        self.user = User.objects.create_user("grace", password="pw")

    def test_http_user_comes_from_the_cookie_and_stays_for_later_frames(self):
        client = WSClient()
        assert client.login(username="grace", password="pw")
        assert not client.login(username="grace", password="wrong")
        with apply_routes([route_class(consumers.HttpUser)]):
            client.send_and_consume("websocket.connect")
            assert client.receive() == "hello grace"
            client.send_and_consume("websocket.receive", text="ping")
            assert client.receive() == "ping from grace"

    def test_http_user_is_anonymous_without_a_session(self):
        client = WSClient()
        with apply_routes([route_class(consumers.HttpUser)]):
            client.send_and_consume("websocket.connect")
            assert client.receive() == "hello AnonymousUser"

    def test_http_user_and_session_keeps_the_http_session_for_later_frames(self):
        client = WSClient()
        client.force_login(self.user)
        client.session["colour"] = "green"
        client.session.save()
        with apply_routes([route_class(consumers.HttpUserAndSession)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="x")
        assert client.receive() == "grace green"


class OrderingTests(ChannelTestCase):
    def test_strict_ordering_runs_frames_in_order(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Strict)]):
            client.send_and_consume("websocket.connect")
            client.send("websocket.receive", {"order": 2}, text="second")
            client.send("websocket.receive", {"order": 1}, text="first")
            client.consume("websocket.receive")  # order 2 arrives early: parked
            assert self.get_next_message("results") is None
            client.consume("websocket.receive")  # order 1 runs, then releases 2
            client.consume("websocket.receive")
        texts = [self.get_next_message("results").content["text"] for _ in range(2)]
        assert texts == ["first", "second"]

    def test_slight_ordering_runs_connect_first(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Slight)]):
            client.send("websocket.receive", {"order": 1}, text="early")
            client.consume("websocket.receive")
            assert self.get_next_message("results") is None
            client.send_and_consume("websocket.connect")
            client.consume("websocket.receive")
        texts = [self.get_next_message("results").content["text"] for _ in range(2)]
        assert texts == ["connected", "early"]

    def test_both_ordering_flags_is_an_error(self):
        with apply_routes([route_class(consumers.Both)]):
            with self.assertRaisesRegex(ValueError, "both strict_ordering and slight_ordering"):
                WSClient().send_and_consume("websocket.connect")


class JsonWebsocketConsumerTests(ChannelTestCase):
    def test_json_in_and_out(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Json)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text={"a": [1, 2]})
        assert client.receive() == {"got": {"a": [1, 2]}, "multiplexed": False}

    def test_group_send_encodes(self):
        alice, bob = WSClient(), WSClient()
        with apply_routes([route_class(consumers.Json)]):
            alice.send_and_consume("websocket.connect")
            bob.send_and_consume("websocket.connect")
            alice.send_and_consume("websocket.receive", text='"shout"')
        assert alice.receive() == bob.receive() == {"shout": True}

    def test_invalid_json_gets_an_error_frame_and_the_socket_stays_open(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Json)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="{not json")
            error = client.receive()
            client.send_and_consume("websocket.receive", {"bytes": b"\x01"})
            binary = client.receive()
            client.send_and_consume("websocket.receive", text="1")
            assert client.receive() == {"got": 1, "multiplexed": False}
        assert error["error"].startswith("invalid JSON: ")
        assert binary == {"error": "expected a JSON text frame, got a binary frame"}

    def test_close_on_invalid_frame(self):
        client = WSClient()
        with apply_routes([route_class(consumers.StrictJson)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="nope")
        reply = client.get_next_message(client.reply_channel).content
        assert reply["close"] == 1007 and "invalid JSON" in reply["text"]

    def test_encode_and_decode_hooks(self):
        client = WSClient()
        with apply_routes([route_class(consumers.Sorted)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text='{"data": "x"}')
        assert client.receive(json=False) == '{"data": {"a": 1, "b": "x"}}'

    def test_dates_and_decimals_are_encoded(self):
        import datetime
        import decimal

        from channels.generic.websockets import JsonWebsocketConsumer

        text = JsonWebsocketConsumer.encode_json({"d": datetime.date(2024, 1, 2), "n": decimal.Decimal("1.5")})
        assert text == '{"d": "2024-01-02", "n": "1.5"}'
