"""The layer registry: settings, historical backend paths, clear errors, overrides."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from asgi_backends.inmemory import ChannelLayer
from channels import Channel, channel_layers
from channels.asgi import get_channel_layer

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
