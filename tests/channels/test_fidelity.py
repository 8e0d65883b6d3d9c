"""Channels 1.x names and behaviours that real 1.x projects rely on.

Top-level routing imports, the ``channels.tests`` alias, the registry's
``ChannelLayerWrapper``, ``WorkerGroup`` and the ``callback``/``message_retrys``
arguments of 1.x's ``Worker``, and ``StaticFilesConsumer``.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
from django.test import override_settings

from asgi_backends.base import ChannelLayer
from asgi_backends.inmemory import ChannelLayer as InMemory
from channels.asgi import ChannelLayerWrapper, channel_layers
from tests.channels.helpers import drain


def test_routing_helpers_are_exported_at_the_package_top():
    import channels
    from channels import routing

    assert (channels.route, channels.route_class, channels.include) == (routing.route, routing.route_class,
                                                                          routing.include)
    assert {"route", "route_class", "include"} <= set(channels.__all__)


def test_channels_tests_is_a_deprecated_alias_of_channels_test():
    import channels.test

    sys.modules.pop("channels.tests", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        alias = importlib.import_module("channels.tests")
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "channels.test" in str(caught[0].message)
    for name in channels.test.__all__:
        assert getattr(alias, name) is getattr(channels.test, name)


def test_the_registry_entry_wraps_the_backend_with_alias_and_routing():
    backend = InMemory()
    wrapper = ChannelLayerWrapper(backend, "other", [])
    assert isinstance(wrapper, ChannelLayer)  # usable wherever a layer is
    assert wrapper.channel_layer is backend and wrapper.alias == "other"
    assert wrapper.capacity == backend.capacity  # the rest of the backend's API passes through
    assert str(wrapper) == "other (asgi_backends.inmemory.ChannelLayer)"
    wrapper.send("fidelity.x", {"n": 1})
    assert backend.receive(["fidelity.x"]) == ("fidelity.x", {"n": 1})
    assert not hasattr(backend, "router") and not hasattr(backend, "alias")
    assert ChannelLayerWrapper(wrapper, "again", []).channel_layer is backend  # never a wrapper of a wrapper


def test_an_incomplete_backend_is_refused_with_what_it_lacks():
    class Partial:
        def send(self, channel, message):
            pass

    with pytest.raises(TypeError, match="lacks .*receive_batch.*BaseChannelLayer"):
        ChannelLayerWrapper(Partial(), "default", [])


def test_setting_a_bare_backend_wraps_it_with_the_configured_routing():
    backend = InMemory()
    with channel_layers.override("default", backend) as wrapper:
        assert isinstance(wrapper, ChannelLayerWrapper) and wrapper.channel_layer is backend
        assert channel_layers["default"] is wrapper
        assert "http.request" in wrapper.router.channels


def test_worker_group_runs_n_threads_and_the_1x_callback(layer, django_db):
    from channels.routing import Router, route
    from channels.worker import Worker, WorkerGroup

    seen = []
    layer.router = Router([route("fidelity.work", lambda message: message.reply_channel.send({"ok": True}))])
    group = WorkerGroup(layer, n_threads=3, signal_handlers=False,
                        callback=lambda channel, message: seen.append((channel, message["n"])))
    assert isinstance(group, Worker) and group.threads == 3
    group.handle("fidelity.work", {"n": 7, "reply_channel": "fidelity.reply"})
    assert seen == [("fidelity.work", 7)]
    assert drain(layer, "fidelity.reply") == [{"ok": True}]
    assert Worker(layer, signal_handlers=False, message_retrys=3).message_retries == 3
    with pytest.raises(ValueError, match="n_threads"):
        WorkerGroup(layer, n_threads=0)
    with pytest.raises(ValueError, match="bare channel layer"):
        Worker(layer.channel_layer)


def test_static_files_consumer_serves_static_then_views(tmp_path, layer, django_db):
    from channels.routing import Router, route
    from channels.staticfiles import StaticFilesConsumer
    from channels.test import HttpClient

    (tmp_path / "app.js").write_text("console.log('hi');\n")
    with override_settings(STATIC_URL="/static/", STATICFILES_DIRS=[str(tmp_path)], DEBUG=True):
        layer.router = Router([route("http.request", StaticFilesConsumer())])
        client = HttpClient()
        found = client.request("GET", "/static/app.js")
        assert found["status"] == 200 and found["content"] == b"console.log('hi');\n"
        assert client.request("GET", "/static/nothing.js")["status"] == 404
        for escape in ("/static/../settings.py", "/static/..%2f..%2fetc/passwd", "/static/%2e%2e/x",
                       "/static/app.js\x00.png", "/static//etc/passwd", "/static/" + "a" * 5000):
            assert client.request("GET", escape)["status"] == 404
        view = client.request("GET", "/")  # not static: Django's URLconf answers
        assert view["status"] == 200
