"""asgi_redis 1.x's Sentinel and local layers: their CONFIG keys, translated to ours."""

from __future__ import annotations

import pytest
import redis

from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.redis.legacy import (
    REDIS_KEYS,
    SENTINEL_KEYS,
    AsgiRedisLocalChannelLayer,
    AsgiRedisSentinelChannelLayer,
)
from tests.asgi_backends.sentinel import running_sentinel
from tests.support.redis_server import free_port


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def sentinel(redis_server, tmp_path):
    with running_sentinel(redis_server.port, tmp_path) as (port, _):
        yield port


def test_the_keys_are_asgi_redis_1_4_3s():
    assert set(REDIS_KEYS) == {
        "expiry", "hosts", "prefix", "group_expiry", "capacity", "channel_capacity",
        "symmetric_encryption_keys", "stats_prefix", "connection_kwargs",
    }
    assert set(SENTINEL_KEYS) == set(REDIS_KEYS) | {"services", "sentinel_refresh_interval"}


# -- Sentinel -----------------------------------------------------------------------


def test_sentinel_layer_takes_every_1x_key(sentinel, raw):
    layer = AsgiRedisSentinelChannelLayer(
        hosts=[("127.0.0.1", sentinel)],  # in 1.x, "hosts" are the sentinels
        services=["mymaster"],
        sentinel_refresh_interval=5,
        prefix="rt1x:",
        expiry=30,
        group_expiry=600,
        capacity=50,
        channel_capacity={"rt.capped": 1},
        symmetric_encryption_keys=["a secret"],
        stats_prefix="rt1x-meta:",
        connection_kwargs={"socket_timeout": 5},  # the least 1.x allowed
    )
    try:
        assert layer.sentinels == [("127.0.0.1", sentinel)] and layer.services == ["mymaster"]
        assert (layer.expiry, layer.group_expiry, layer.capacity) == (30, 600, 50)
        assert layer.blocking_timeout < 5  # the pop stays under the 5 s socket timeout
        layer.send("rt.legacy", {"via": "sentinel"})
        assert raw.llen("rt1x:rt.legacy") == 1  # on the master the sentinel named
        assert b"sentinel" not in raw.lindex("rt1x:rt.legacy", 0)  # encrypted at rest
        assert layer.receive(["rt.legacy"], block=True) == ("rt.legacy", {"via": "sentinel"})
        layer.send("rt.capped", {"n": 1})
        with pytest.raises(layer.ChannelFull):
            layer.send("rt.capped", {"n": 2})
        layer.group_add("rt-legacy", "rt.legacy")
        layer.send_group("rt-legacy", {"g": 1})
        assert layer.receive(["rt.legacy"]) == ("rt.legacy", {"g": 1})
    finally:
        layer.flush()
        layer.close()


def test_sentinel_layer_asks_the_sentinels_for_services_when_none_are_listed(sentinel):
    for services in (None, []):
        layer = AsgiRedisSentinelChannelLayer(hosts=[["127.0.0.1", sentinel]], services=services, prefix="rt1x:")
        try:
            assert layer.services == ["mymaster"]
            layer.send("rt.found", {"n": 1})
            assert layer.receive(["rt.found"]) == ("rt.found", {"n": 1})
        finally:
            layer.flush()
            layer.close()


def test_sentinel_layer_discovery_fails_clearly_without_sentinels():
    port = free_port()
    with pytest.raises(LayerUnavailable, match=f"127.0.0.1:{port}.*services"):
        AsgiRedisSentinelChannelLayer(hosts=[("127.0.0.1", port)])


@pytest.mark.parametrize(("config", "error", "needle"), [
    ({"sentinels": [("127.0.0.1", 26379)]}, TypeError, "'sentinels'.*asgi_backends.redis.RedisSentinelChannelLayer"),
    ({"blocking_timeout": 1, "pool_size": 3}, TypeError, "'blocking_timeout', 'pool_size'"),
    ({"hosts": "127.0.0.1:26379"}, ValueError, "list of \\(host, port\\)"),
    ({"hosts": ["redis://127.0.0.1:26379"]}, ValueError, "not strings"),
    ({"connection_kwargs": {"socket_timeout": 1}}, ValueError, "at least 5"),
    ({"sentinel_refresh_interval": "5"}, TypeError, "sentinel_refresh_interval"),
    ({"stats_prefix": 1}, TypeError, "stats_prefix"),
    ({"services": [1]}, TypeError, "services"),
])
def test_sentinel_layer_refuses_what_1x_did_not_take(config, error, needle):
    config.setdefault("services", ["mymaster"])  # no discovery: these fail before any connection
    with pytest.raises(error, match=needle):
        AsgiRedisSentinelChannelLayer(**config)


# -- local ----------------------------------------------------------------------------


def test_local_layer_takes_every_1x_key_and_sends_everything_through_redis(redis_server, raw):
    config = {
        "hosts": [redis_server.url], "prefix": "rtl:", "expiry": 30, "group_expiry": 600, "capacity": 50,
        "channel_capacity": {"rt.capped": 1}, "symmetric_encryption_keys": None, "stats_prefix": "rtl-meta:",
        "connection_kwargs": {"socket_timeout": 30},
    }
    sender, receiver = AsgiRedisLocalChannelLayer(**config), AsgiRedisLocalChannelLayer(**config)
    try:
        assert (sender.expiry, sender.group_expiry, sender.capacity, sender.stats_prefix) == (30, 600, 50, "rtl-meta:")
        assert sender.blocking_timeout == 5
        # 1.x sent a normal channel through asgi_ipc, readable only on this machine; ours is in Redis.
        sender.send("http.request", {"n": 1})
        assert raw.llen("rtl:http.request") == 1
        assert receiver.receive(["http.request"], block=True) == ("http.request", {"n": 1})
        reply = receiver.new_channel("http.response!")
        sender.send(reply, {"n": 2})
        assert receiver.receive(["http.response!"], block=True) == (reply, {"n": 2})
        sender.send("rt.capped", {"n": 1})
        with pytest.raises(sender.ChannelFull):
            sender.send("rt.capped", {"n": 2})
    finally:
        sender.flush()
        sender.close()
        receiver.close()


@pytest.mark.parametrize(("config", "error", "needle"), [
    ({"blocking_timeout": 1}, TypeError, "'blocking_timeout'.*asgi_backends.redis.RedisChannelLayer"),
    ({"services": ["x"]}, TypeError, "'services'"),
    ({"connection_kwargs": {"socket_timeout": 4.5}}, ValueError, "at least 5"),
    ({"stats_prefix": None}, TypeError, "stats_prefix"),
])
def test_local_layer_refuses_what_1x_did_not_take(config, error, needle):
    with pytest.raises(error, match=needle):
        AsgiRedisLocalChannelLayer(**config)
