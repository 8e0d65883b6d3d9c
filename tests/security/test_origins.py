"""Origin validators on function consumers, consumer methods and consumer classes."""

from __future__ import annotations

from django.test import override_settings

from channels import Channel, channel_layers
from channels.generic.websockets import WebsocketConsumer
from channels.routing import route, route_class
from channels.security.websockets import (
    AllowedHostsOnlyOriginValidator,
    BaseOriginValidator,
    OriginValidator,
    allowed_hosts_only,
)
from channels.test import ChannelTestCase, WSClient, apply_routes


@allowed_hosts_only
def connect_function(message, **kwargs):
    Channel("results").send({"ran": "function"})
    message.reply_channel.send({"accept": True})


class MethodChecked(WebsocketConsumer):
    groups = ["checked"]

    @allowed_hosts_only
    def connect(self, message, **kwargs):
        Channel("results").send({"ran": "method"})
        self.accept()


@allowed_hosts_only
class ClassChecked(WebsocketConsumer):
    """Every handshake of this class is checked."""

    groups = ["class-checked"]

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=text)


def ws(origin):
    return WSClient(headers={"Origin": origin} if origin else None)


@override_settings(ALLOWED_HOSTS=["example.com", ".trusted.org"])
class AllowedHostsOnlyTests(ChannelTestCase):
    def handshake(self, routes, origin, path="/"):
        client = ws(origin)
        with apply_routes(routes):
            client.send_and_consume("websocket.connect", path=path, check_accept=False)
        return client, client.receive()

    def test_function_consumer(self):
        routes = [route("websocket.connect", connect_function)]
        for origin in ("http://example.com", "https://www.trusted.org:8443", "http://trusted.org"):
            assert self.handshake(routes, origin)[1] == {"accept": True}, origin
        for origin in ("http://evil.com", "http://example.com.evil.com", "null", None, "not a url"):
            assert self.handshake(routes, origin)[1] == {"close": True}, origin
        ran = [self.get_next_message("results") for _ in range(4)]
        assert [m["ran"] for m in ran if m] == ["function"] * 3

    def test_method_on_a_class_consumer(self):
        routes = [route_class(MethodChecked)]
        good, reply = self.handshake(routes, "http://example.com")
        assert reply == {"accept": True}
        bad, reply = self.handshake(routes, "http://evil.com")
        assert reply == {"close": True}
        # The refused socket left the group it joined before connect() ran.
        assert channel_layers["default"].group_channels("checked") == [good.reply_channel]

    def test_decorated_class(self):
        routes = [route_class(ClassChecked)]
        assert ClassChecked.__name__ == "ClassChecked" and ClassChecked.channel_names() == {
            "websocket.connect", "websocket.receive", "websocket.disconnect"}
        good, reply = self.handshake(routes, "http://example.com")
        assert reply == {"accept": True}
        _, reply = self.handshake(routes, "http://evil.com")
        assert reply == {"close": True}
        assert channel_layers["default"].group_channels("class-checked") == [good.reply_channel]
        with apply_routes(routes):  # later frames carry no Origin and are not checked
            good.send_and_consume("websocket.receive", text="hi")
        assert good.receive() == "hi"

    def test_only_connect_messages(self):
        client = ws("http://example.com")
        with apply_routes([route("websocket.receive", connect_function)]):
            with self.assertRaisesRegex(ValueError, "only works on websocket.connect"):
                client.send_and_consume("websocket.receive", text="x")

    @override_settings(ALLOWED_HOSTS=[], DEBUG=True)
    def test_debug_with_no_allowed_hosts_allows_localhost(self):
        routes = [route("websocket.connect", connect_function)]
        assert self.handshake(routes, "http://localhost:8000")[1] == {"accept": True}
        assert self.handshake(routes, "http://127.0.0.1:8000")[1] == {"accept": True}
        assert self.handshake(routes, "http://[::1]:8000")[1] == {"accept": True}
        assert self.handshake(routes, "http://localhost:notaport")[1] == {"close": True}
        assert self.handshake(routes, "http://example.com")[1] == {"close": True}


class CustomValidatorTests(ChannelTestCase):
    def test_origin_validator_with_an_explicit_list(self):
        checked = OriginValidator(connect_function.func, allowed_origins=["https://app.example.com", ".cdn.net"])
        routes = [route("websocket.connect", checked)]
        for origin, expected in [("https://app.example.com", True), ("http://app.example.com", False),
                                 ("https://x.cdn.net", True), ("https://cdn.net.evil", False)]:
            client = ws(origin)
            with apply_routes(routes):
                client.send_and_consume("websocket.connect", check_accept=False)
            assert (client.receive() == {"accept": True}) is expected, origin

    def test_origin_validator_as_a_decorator_factory(self):
        @OriginValidator(allowed_origins=["*"])
        def anyone(message):
            message.reply_channel.send({"accept": True})

        client = ws("http://wherever.example")
        with apply_routes([route("websocket.connect", anyone)]):
            client.send_and_consume("websocket.connect")

    def test_subclass_hook(self):
        class EvenPorts(BaseOriginValidator):
            def validate_origin(self, message, origin):
                return origin.endswith(("0", "2", "4", "6", "8"))

        @EvenPorts
        def consumer(message):
            message.reply_channel.send({"accept": True})

        for origin, accepted in [("http://h:8000", True), ("http://h:8001", False)]:
            client = ws(origin)
            with apply_routes([route("websocket.connect", consumer)]):
                client.send_and_consume("websocket.connect", check_accept=False)
            assert (client.receive() == {"accept": True}) is accepted

    def test_bad_uses_are_clear_errors(self):
        with self.assertRaisesRegex(TypeError, "allowed_origins"):
            OriginValidator(connect_function.func)
        with self.assertRaisesRegex(TypeError, "takes no options"):
            AllowedHostsOnlyOriginValidator(connect_function.func, allowed_origins=["x"])
        with self.assertRaisesRegex(TypeError, "decorates a consumer"):
            allowed_hosts_only(42)
