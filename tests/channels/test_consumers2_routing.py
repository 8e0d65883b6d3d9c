"""Channels 2-4 routing, middleware, origin checks, layers API and backend paths."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.asgi import get_asgi_application
from django.urls import path, re_path

from channels.auth import AuthMiddlewareStack
from channels.layers import AsyncChannelLayer, get_channel_layer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from channels.sessions import SessionMiddlewareStack
from channels.testing import HttpCommunicator, WebsocketCommunicator
from tests.channels import consumers2 as c


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _layer(layer):
    yield layer


def test_protocol_type_router_sends_by_type_and_refuses_unknown_types():
    app = ProtocolTypeRouter({"websocket": URLRouter([path("echo/", c.EchoConsumer.as_asgi())])})

    async def main():
        comm = WebsocketCommunicator(app, "/echo/")
        assert (await comm.connect())[0]
        await comm.send_to(text_data="x")
        assert await comm.receive_from() == "x"
        with pytest.raises(ValueError, match="No application configured for scope type 'lifespan'"):
            await app({"type": "lifespan"}, None, None)

    run(main())


def test_re_path_positional_groups_and_defaults_land_in_url_route():
    class Show(c.WebsocketConsumer):
        def connect(self):
            self.accept()
            route = self.scope["url_route"]
            self.send(text_data=f"{route['args']} {sorted(route['kwargs'].items())}")

    app = URLRouter([re_path(r"^a/(\d+)/$", Show.as_asgi()), path("b/<int:n>/", Show.as_asgi(), {"extra": 1})])

    async def main():
        one = WebsocketCommunicator(app, "/a/42/")
        await one.connect()
        assert await one.receive_from() == "('42',) []"
        two = WebsocketCommunicator(app, "/b/7/")
        await two.connect()
        assert await two.receive_from() == "() [('extra', 1), ('n', 7)]"

    run(main())


@pytest.fixture
def logged_in(django_db):
    """Yield the Cookie header of a session logged in as user "consumers2-ada" (deleted afterwards)."""
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.cache import SessionStore

    user = User.objects.create_user("consumers2-ada")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session["colour"] = "teal"
    session.save()
    yield (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}; other=1".encode())
    user.delete()


def test_auth_middleware_stack_puts_the_session_user_in_scope_on_every_event(logged_in):
    app = AuthMiddlewareStack(URLRouter([path("j/", c.AsyncJsonCounter.as_asgi())]))
    cookie = logged_in

    async def main():
        comm = WebsocketCommunicator(app, "/j/", headers=[cookie])
        assert (await comm.connect())[0]
        for n in range(2):
            await comm.send_json_to({"n": n})
            assert (await comm.receive_json_from())["user"] == "consumers2-ada"
        anonymous = WebsocketCommunicator(app, "/j/")
        assert (await anonymous.connect())[0]
        await anonymous.send_json_to({})
        assert (await anonymous.receive_json_from())["user"] == "AnonymousUser"

    run(main())


def test_session_middleware_stack_gives_the_browser_session(logged_in):
    class Colour(c.WebsocketConsumer):
        def connect(self):
            self.accept()
            self.send(text_data=f"{self.scope['session'].get('colour')} {self.scope['cookies']['other']}")

    app = SessionMiddlewareStack(Colour.as_asgi())
    cookie = logged_in

    async def main():
        comm = WebsocketCommunicator(app, "/", headers=[cookie])
        await comm.connect()
        assert await comm.receive_from() == "teal 1"

    run(main())


@pytest.mark.parametrize("origin, allowed", [
    (b"https://example.com", True), (b"https://sub.example.com", True), (b"https://evil.com", False), (None, False),
])
def test_origin_validator(origin, allowed):
    app = OriginValidator(c.EchoConsumer.as_asgi(), [".example.com"])

    async def main():
        headers = [(b"origin", origin)] if origin else []
        comm = WebsocketCommunicator(app, "/", headers=headers)
        return (await comm.connect())[0]

    assert run(main()) is allowed


def test_allowed_hosts_origin_validator():
    from django.test import override_settings

    app = AllowedHostsOriginValidator(c.EchoConsumer.as_asgi())

    async def main(origin):
        comm = WebsocketCommunicator(app, "/", headers=[(b"origin", origin)])
        return (await comm.connect())[0]

    with override_settings(ALLOWED_HOSTS=["good.example"]):
        assert run(main(b"http://good.example:8000")) is True
        assert run(main(b"http://bad.example")) is False


def test_layer_api_is_awaitable_and_works_through_async_to_sync():
    layer = get_channel_layer()
    assert isinstance(layer, AsyncChannelLayer) and get_channel_layer() is layer
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("g", name)
    async_to_sync(layer.group_send)("g", {"type": "hello", "n": 1})
    assert async_to_sync(layer.receive)(name) == {"type": "hello", "n": 1}
    async_to_sync(layer.group_discard)("g", name)
    async_to_sync(layer.send)(name, {"type": "direct"})
    assert run(layer.receive(name)) == {"type": "direct"}


def test_a_view_can_group_send_to_consumers():
    """What a Django view does: async_to_sync(get_channel_layer().group_send)(...), reaching connected consumers."""

    async def main():
        comm = WebsocketCommunicator(c.GroupsConsumer.as_asgi(), "/g/")
        await comm.connect()
        await asyncio.get_running_loop().run_in_executor(None, lambda: async_to_sync(get_channel_layer().group_send)(
            "everyone", {"type": "news.item", "text": "from a view"}))
        assert await comm.receive_json_from() == {"news": "from a view", "count": 0}

    run(main())


def test_http_communicator_serves_django_views_through_the_router():
    app = ProtocolTypeRouter({"http": get_asgi_application()})

    async def main():
        return await HttpCommunicator(app, "GET", "/").get_response()

    response = run(main())
    assert response["status"] == 200 and response["body"] == b"OK"


def test_channel_name_router_names_its_channels():
    from channels.consumer import SyncConsumer

    class Thumbnailer(SyncConsumer):
        def thumbnail_generate(self, event):
            self.__class__.done.append(event["id"])

    Thumbnailer.done = []
    app = ProtocolTypeRouter({"channel": ChannelNameRouter({"thumbnails": Thumbnailer.as_asgi()})})
    assert app.channel_names() == {"thumbnails"}

    from channels.routing import Router

    router = Router([], application=app)
    assert {"thumbnails", "websocket.event", "websocket.connect", "http.request"} <= router.channels


def test_backend_paths_of_channels_2_to_4(redis_server):
    from asgi_backends.redis.channels_redis import ChannelsRedisChannelLayer
    from channels.asgi import backend_class

    assert backend_class("channels_redis.core.RedisChannelLayer") is ChannelsRedisChannelLayer
    layer = ChannelsRedisChannelLayer(hosts=[{"address": redis_server.url}], prefix="t2", capacity=10,
                                      expiry=30, group_expiry=60, symmetric_encryption_keys=None)
    assert layer.prefix == "t2:"
    layer.send("thumbnails", {"type": "x"})
    assert layer.receive(["thumbnails"]) == ("thumbnails", {"type": "x"})
    tuned = ChannelsRedisChannelLayer(hosts=[{"host": "127.0.0.1", "port": redis_server.port, "socket_timeout": None}])
    tuned.send("thumbnails", {"type": "y"})
    assert tuned.receive(["thumbnails"]) == ("thumbnails", {"type": "y"})
    with pytest.raises(TypeError, match="different values"):
        ChannelsRedisChannelLayer(hosts=[{"address": "redis://a:1", "socket_timeout": 1},
                                         {"address": "redis://b:1", "socket_timeout": 2}])
    with pytest.raises(TypeError, match="bogus"):
        ChannelsRedisChannelLayer(hosts=[redis_server.url], bogus=1)
    with pytest.raises(TypeError, match="Sentinel"):
        ChannelsRedisChannelLayer(hosts=[{"sentinels": [("h", 1)], "master_name": "m"}])
    from asgi_backends.inmemory import ChannelLayer

    assert backend_class("channels.layers.InMemoryChannelLayer") is ChannelLayer
