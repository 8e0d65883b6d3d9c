"""The in-memory layer against the conformance suite."""

from __future__ import annotations

from asgi_backends.conformance import ConformanceTests
from asgi_backends.inmemory import ChannelLayer


class TestInMemoryLayer(ConformanceTests):
    def make_layer(self, **config):
        return ChannelLayer(**config)

    def layer_spec(self, **config):
        return "asgi_backends.inmemory.ChannelLayer", config

    def test_not_cross_process(self):
        assert ChannelLayer.cross_process is False
