"""The Redis layer against the conformance suite, on a real redis-server."""

from __future__ import annotations

import pytest

from asgi_backends.conformance import ConformanceTests
from asgi_backends.redis import RedisChannelLayer
from tests.support.redis_server import RedisServer


class TestRedisLayer(ConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, redis_server):
        self.url = redis_server.url

    def make_layer(self, **config):
        return RedisChannelLayer(hosts=[self.url], prefix="conf:", **config)

    def layer_spec(self, **config):
        return "asgi_backends.redis.RedisChannelLayer", {"hosts": [self.url], "prefix": "conf:", **config}


@pytest.fixture(scope="module")
def three_servers():
    """Three redis-servers shared by the sharded tests of this module; yields their URLs."""
    servers = [RedisServer().start() for _ in range(3)]
    yield [server.url for server in servers]
    for server in servers:
        server.cleanup()


class TestShardedRedisLayer(ConformanceTests):
    """Three servers: channels spread, blocking receives span shards."""

    @pytest.fixture(autouse=True)
    def _server(self, three_servers):
        self.urls = three_servers

    def make_layer(self, **config):
        return RedisChannelLayer(hosts=self.urls, prefix="conf:", **config)

    def layer_spec(self, **config):
        return "asgi_backends.redis.RedisChannelLayer", {"hosts": self.urls, "prefix": "conf:", **config}
