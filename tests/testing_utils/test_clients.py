"""channels.test: ChannelTestCase, Client, HttpClient, WSClient and apply_routes."""

from __future__ import annotations

from django.contrib.auth.models import User

from channels import Channel, channel_layers
from channels.routing import include, route
from channels.sessions import channel_session
from channels.test import ChannelTestCase, Client, HttpClient, TransactionChannelTestCase, WSClient, apply_routes


def echo(message, **kwargs):
    message.reply_channel.send({"echo": message.content.get("value"), "kwargs": kwargs})


def record(message, **kwargs):
    Channel("results").send({k: v for k, v in message.content.items() if k != "reply_channel"})


def boom(message, **kwargs):
    raise RuntimeError("consumer failed")


def refuse(message, **kwargs):
    message.reply_channel.send({"close": True})


@channel_session
def remember(message, **kwargs):
    message.channel_session["seen"] = message.channel_session.get("seen", 0) + 1
    message.reply_channel.send({"text": str(message.channel_session["seen"])})


class ChannelTestCaseTests(ChannelTestCase):
    def test_a_fresh_layer_per_test_part_one(self):
        Channel("leftovers").send({"n": 1})
        assert self.get_next_message("leftovers", require=True)["n"] == 1
        Channel("leftovers").send({"n": 2})  # left behind on purpose

    def test_a_fresh_layer_per_test_part_two(self):
        assert self.get_next_message("leftovers") is None

    def test_require_fails_the_test_when_empty(self):
        with self.assertRaisesRegex(AssertionError, "Expected a message on channel 'empty'"):
            self.get_next_message("empty", require=True)

    def test_the_layer_carries_the_configured_routing(self):
        layer = channel_layers["default"]
        assert type(layer.channel_layer).__module__ == "asgi_backends.inmemory"
        assert "websocket.connect" in layer.router.channels  # the defaults are there


class ClientTests(ChannelTestCase):
    @apply_routes([route("echo", echo, value=r"^(?P<kind>[a-z]+)")])
    def test_send_and_consume_then_receive(self):
        client = Client()
        client.send_and_consume("echo", {"value": "abc1"})
        assert client.receive() == {"echo": "abc1", "kwargs": {"kind": "abc"}}
        assert client.receive() is None

    @apply_routes([route("echo", echo)])
    def test_fail_on_none(self):
        client = Client()
        with self.assertRaisesRegex(AssertionError, "No message to consume on 'echo'"):
            client.consume("echo")
        assert client.consume("echo", fail_on_none=False) is None

    @apply_routes([route("boom", boom)])
    def test_consumer_exceptions_reach_the_test_and_its_sends_are_dropped(self):
        with self.assertRaisesRegex(RuntimeError, "consumer failed"):
            Client().send_and_consume("boom")

    def test_each_client_has_its_own_reply_channel(self):
        one, two = Client(), Client()
        assert one.reply_channel != two.reply_channel
        channel_layers["default"].send(two.reply_channel, {"for": "two"})
        assert one.receive() is None
        assert two.receive() == {"for": "two"}


class ApplyRoutesTests(ChannelTestCase):
    def test_context_manager_restores_the_routing(self):
        layer = channel_layers["default"]
        before = layer.router
        with apply_routes([route("records", record)]):
            assert "records" in layer.router.channels
        assert layer.router is before
        assert "records" not in layer.router.channels

    def test_a_single_route_and_lists_of_routings(self):
        with apply_routes(route("records", record)):
            Client().send_and_consume("records", {"x": 1})
        with apply_routes([[route("records", record)], [route("echo", echo)]]):
            Client().send_and_consume("records", {"x": 2})
            client = Client()
            client.send_and_consume("echo", {"value": "v"})
            assert client.receive()["echo"] == "v"
        assert [self.get_next_message("results")["x"] for _ in range(2)] == [1, 2]

    def test_include_prefixes_work_inside(self):
        with apply_routes([include([route("records", record, path=r"^/in/$")], path=r"^/pre")]):
            Client().send_and_consume("records", {"path": "/pre/in/"})
        assert self.get_next_message("results", require=True)["path"] == "/pre/in/"


@apply_routes([route("records", record)])
class DecoratedClassTests(ChannelTestCase):
    def test_class_decorator_applies_to_each_test(self):
        Client().send_and_consume("records", {"y": 1})
        assert self.get_next_message("results", require=True)["y"] == 1


class HttpClientTests(ChannelTestCase):
    def test_cookies_and_headers_are_sent_with_handshakes(self):
        client = HttpClient(headers={"Origin": "http://example.com"})
        client.set_cookie("flavour", "oat")
        with apply_routes([route("http.request", record), route("websocket.connect", record)]):
            client.send_and_consume("http.request", path="/a/?q=1")
            client.send_and_consume("websocket.connect", path="/ws/")
        http = self.get_next_message("results", require=True).content
        ws = self.get_next_message("results", require=True).content
        assert http["path"] == "/a/" and http["query_string"] == b"q=1" and http["method"] == "GET"
        assert [b"origin", b"http://example.com"] in http["headers"]
        cookie = dict(ws["headers"])[b"cookie"]
        assert cookie == b"flavour=oat; sessionid=" + client.session.session_key.encode()
        assert ws["order"] == 0

    def test_login_puts_the_user_in_the_session(self):
        User.objects.create_user("ada", password="secret")
        client = HttpClient()
        assert client.login(username="ada", password="secret")
        assert client.get_cookies()["sessionid"] == client.session.session_key
        assert client.session["_auth_user_id"] == str(User.objects.get(username="ada").pk)
        client.logout()
        assert "_auth_user_id" not in client.session

    def test_request_runs_the_django_view_layer(self):
        client = HttpClient()
        response = client.request("GET", "/")
        assert response["status"] == 200
        assert response["content"] == b"OK"


class HttpClientSpeaksWebSocketTests(ChannelTestCase):
    """Channels 1.x test code drove WebSockets with HttpClient; it still works."""

    def test_connect_check_and_json_frames(self):
        client = HttpClient()
        with apply_routes([route("websocket.receive", remember)]):
            client.send_and_consume("websocket.connect", path="/ws/")
            client.send_and_consume("websocket.receive", path="/ws/", text={"a": 1})
        assert client.receive() == 1
        with apply_routes([route("websocket.connect", refuse)]):
            with self.assertRaisesRegex(AssertionError, "not accepted: the first reply was {'close': True}"):
                HttpClient().send_and_consume("websocket.connect")


class WSClientTests(ChannelTestCase):
    def test_order_counts_up_from_connect(self):
        client = WSClient()
        with apply_routes([route("websocket.connect", record), route("websocket.receive", record)]):
            client.send_and_consume("websocket.connect", check_accept=False)
            client.send_and_consume("websocket.receive", text="a")
            client.send_and_consume("websocket.receive", text="b")
        orders = [self.get_next_message("results").content["order"] for _ in range(3)]
        assert orders == [0, 1, 2]

    def test_ordered_clients_refuse_manual_orders(self):
        with self.assertRaisesRegex(ValueError, "order=5"):
            WSClient(ordered=True).send("websocket.receive", {"order": 5})

    def test_json_text_and_channel_session_across_frames(self):
        client = WSClient()
        with apply_routes([route("websocket.receive", remember)]):
            client.send_and_consume("websocket.connect")  # the default route accepts
            client.send_and_consume("websocket.receive", text={"any": "json"})
            client.send_and_consume("websocket.receive", text="again")
        assert [client.receive(), client.receive()] == [1, 2]

    def test_receive_without_json_decoding(self):
        client = WSClient()
        channel_layers["default"].send(client.reply_channel, {"text": '{"a": 1}'})
        channel_layers["default"].send(client.reply_channel, {"text": "plain"})
        channel_layers["default"].send(client.reply_channel, {"close": True})
        assert client.receive(json=False) == '{"a": 1}'
        assert client.receive() == "plain"
        assert client.receive(json=False) == {"close": True}  # no text: the whole message
        assert client.receive() is None


class OneXClientTests(ChannelTestCase):
    """What Channels 1.x tests did with the clients."""

    def test_dict_text_in_content_is_sent_as_json(self):
        client = WSClient()
        with apply_routes([route("websocket.receive", record)]):
            client.send_and_consume("websocket.receive", {"text": {"a": [1, 2]}}, path="/x/")
        assert self.get_next_message("results", require=True).content["text"] == '{"a": [1, 2]}'

    def test_headers_given_as_a_dict_or_as_bytes_reach_the_consumer_as_pairs(self):
        client = WSClient()
        client.set_header(b"Origin", b"http://example.com")
        client.set_cookie(b"k", b"v")
        with apply_routes([route("websocket.connect", record)]):
            client.send_and_consume("websocket.connect", {"headers": {"X-Thing": b"1"}}, check_accept=False)
            client.send_and_consume("websocket.connect", path="/", check_accept=False)
        assert self.get_next_message("results", require=True).content["headers"] == [[b"x-thing", b"1"]]
        headers = dict(self.get_next_message("results", require=True).content["headers"])
        assert headers[b"origin"] == b"http://example.com" and headers[b"cookie"].startswith(b"k=v; ")
        with self.assertRaises(ValueError):
            client.set_header("Cookie", "a=b")

    def test_reply_channel_is_plain_and_readable_directly(self):
        client = Client()
        assert "!" not in client.reply_channel and "?" not in client.reply_channel
        client.join_group("fans")
        from channels import Group

        Group("fans").send({"text": "hi"})
        assert channel_layers["default"].receive_many([client.reply_channel]) == (client.reply_channel, {"text": "hi"})

    def test_get_consumer_by_channel(self):
        client = Client()
        with apply_routes([route("records", record)]):
            assert client.get_consumer_by_channel("records") is record
            assert client.get_consumer_by_channel("unrouted") is None


class TransactionCaseTests(TransactionChannelTestCase):
    def test_has_its_own_in_memory_layer(self):
        channel_layers["default"].send("tx.check", {"n": 1})
        assert self.get_next_message("tx.check", require=True).content == {"n": 1}
