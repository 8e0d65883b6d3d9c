"""The layer registry: settings, historical backend paths, clear errors, overrides."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from asgi_backends.inmemory import ChannelLayer
from channels import Channel, channel_layers
from channels.asgi import get_channel_layer
from tests.asgi_backends.sentinel import running_sentinel

ROUTES = []


def test_default_layer_from_settings_maps_historical_inmemory_path():
    with override_settings(CHANNEL_LAYERS={"default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"capacity": 7},
        "ROUTING": "tests.channels.test_registry.ROUTES",
    }}):
        layer = get_channel_layer()
        assert isinstance(layer, ChannelLayer)  # the backend itself, as Channels 1.x returned
        assert layer.capacity == 7
        entry = channel_layers["default"]
        assert entry.channel_layer is layer and entry.alias == "default"
        assert "http.request" in entry.router.channels
        assert not hasattr(layer, "router")  # the routing lives in the registry entry, not on the backend
        assert get_channel_layer() is layer  # built once
    assert channel_layers["default"].channel_layer is not layer  # settings change resets the registry


def test_historical_redis_path_resolves_to_ours():
    from channels.asgi import backend_class

    assert backend_class("asgi_redis.RedisChannelLayer").__module__.startswith("asgi_backends.redis")


def test_1x_sentinel_settings_load(redis_server, tmp_path):
    from asgi_backends.redis import RedisSentinelChannelLayer

    # As asgi_redis 1.4.3's README wrote them: "hosts" are the sentinels.
    with running_sentinel(redis_server.port, tmp_path) as (port, _):
        with override_settings(CHANNEL_LAYERS={"default": {
            "BACKEND": "asgi_redis.RedisSentinelChannelLayer",
            "CONFIG": {"hosts": [("127.0.0.1", port)], "services": ["mymaster"], "sentinel_refresh_interval": 5,
                       "prefix": "reg1x:", "capacity": 7, "stats_prefix": "reg1x-meta:"},
            "ROUTING": "tests.channels.test_registry.ROUTES",
        }}):
            layer = get_channel_layer()
            try:
                assert isinstance(layer, RedisSentinelChannelLayer) and layer.capacity == 7
                assert layer.sentinels == [("127.0.0.1", port)] and layer.services == ["mymaster"]
                Channel("reg.sentinel").send({"n": 1})
                assert layer.receive(["reg.sentinel"], block=True) == ("reg.sentinel", {"n": 1})
            finally:
                layer.flush()
                layer.close()


def test_1x_local_settings_load_onto_the_redis_layer(redis_server):
    from asgi_backends.redis import RedisChannelLayer

    with override_settings(CHANNEL_LAYERS={"default": {
        "BACKEND": "asgi_redis.RedisLocalChannelLayer",
        "CONFIG": {"hosts": [redis_server.url], "prefix": "reglocal:", "stats_prefix": "reglocal-meta:"},
        "ROUTING": "tests.channels.test_registry.ROUTES",
    }}):
        layer = get_channel_layer()
        try:
            assert isinstance(layer, RedisChannelLayer)
            Channel("http.request").send({"n": 1})
            assert layer.receive(["http.request"], block=True) == ("http.request", {"n": 1})
        finally:
            layer.flush()
            layer.close()


def test_1x_plain_redis_settings_with_every_asgi_redis_key_load(redis_server):
    with override_settings(CHANNEL_LAYERS={"default": {
        "BACKEND": "asgi_redis.RedisChannelLayer",
        "CONFIG": {"hosts": [redis_server.url], "prefix": "regplain:", "expiry": 30, "group_expiry": 600,
                   "capacity": 9, "channel_capacity": {"http.request": 200}, "symmetric_encryption_keys": None,
                   "stats_prefix": "regplain-meta:", "connection_kwargs": {"socket_connect_timeout": 3}},
        "ROUTING": "tests.channels.test_registry.ROUTES",
    }}):
        layer = get_channel_layer()
        try:
            assert (layer.capacity, layer.get_capacity("http.request")) == (9, 200)
            Channel("reg.plain").send({"n": 1})
            assert layer.receive(["reg.plain"], block=True) == ("reg.plain", {"n": 1})
        finally:
            layer.flush()
            layer.close()


@pytest.mark.parametrize("backend", ["asgi_redis.RedisSentinelChannelLayer", "asgi_redis.RedisLocalChannelLayer"])
def test_1x_redis_variants_name_a_key_they_do_not_take(backend):
    with override_settings(CHANNEL_LAYERS={"default": {
        "BACKEND": backend, "CONFIG": {"services": ["mymaster"], "pool_size": 3}, "ROUTING": [],
    }}):
        with pytest.raises(ImproperlyConfigured, match="rejected its CONFIG.*'pool_size'"):
            channel_layers["default"]


@pytest.mark.parametrize(("layers", "alias", "needle"), [
    ({}, "default", "No channel layer 'default'"),
    ({"default": {"BACKEND": "nowhere.Layer", "ROUTING": []}}, "default", "nowhere.Layer"),
    ({"default": {"ROUTING": []}}, "default", "'BACKEND'"),
    ({"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTING": "no.such.routing"}}, "default",
     "no.such.routing"),
    ({"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"capacity": 0}, "ROUTING": []}},
     "default", "rejected its CONFIG"),
    ({"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTING": []}}, "other", "'other'"),
])
def test_misconfiguration_is_reported_with_the_bad_value(layers, alias, needle):
    with override_settings(CHANNEL_LAYERS=layers):
        with pytest.raises(ImproperlyConfigured, match=needle.replace("(", r"\(")):
            channel_layers[alias]


def test_override_swaps_and_restores(layer):
    other = ChannelLayer()
    with channel_layers.override("default", other):
        Channel("swap.test").send({"n": 1})
        assert other.receive(["swap.test"]) == ("swap.test", {"n": 1})
    assert channel_layers["default"] is layer
