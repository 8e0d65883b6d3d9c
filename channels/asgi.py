"""The layer registry, built lazily from ``settings.CHANNEL_LAYERS``.

A project's ``asgi.py`` hands its layer to the interface server::

    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    from channels.asgi import get_channel_layer
    channel_layer = get_channel_layer()

The returned object is the backend layer itself, with two attributes added:
``router`` (the project's :class:`~channels.routing.Router`) and ``alias``.
A worker or interface server started from it needs nothing else.

Settings::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_backends.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [("localhost", 6379)]},
            "ROUTING": "myproject.routing.channel_routing",
        },
    }

Tests swap layers with :meth:`ChannelLayerManager.set` or
:meth:`ChannelLayerManager.override`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from django.core.exceptions import ImproperlyConfigured

DEFAULT_CHANNEL_LAYER = "default"

#: Backend paths of the historical packages, mapped to this project's layers,
#: so settings written for Channels 1.x keep working unchanged.
BACKEND_ALIASES: dict[str, str] = {
    "asgiref.inmemory.ChannelLayer": "asgi_backends.inmemory.ChannelLayer",
    "asgi_redis.RedisChannelLayer": "asgi_backends.redis.RedisChannelLayer",
    "asgi_redis.RedisSentinelChannelLayer": "asgi_backends.redis.RedisChannelLayer",
    # The same-machine (cross-process, no server) layer replaces asgi_ipc.
    "asgi_ipc.IPCChannelLayer": "asgi_backends.sqlite.SQLiteChannelLayer",
}


class ChannelLayerManager:
    """Maps aliases to layer objects, building each on first use from settings.

    ``channel_layers["default"]`` returns the layer (with ``.router`` and
    ``.alias``); ``"default" in channel_layers`` says whether it is configured.
    """

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}
        self._lock = threading.RLock()

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        """Return ``settings.CHANNEL_LAYERS`` (empty when unset)."""
        from django.conf import settings

        return getattr(settings, "CHANNEL_LAYERS", None) or {}

    def __getitem__(self, alias: str) -> Any:
        try:
            return self.backends[alias]
        except KeyError:
            pass
        with self._lock:
            if alias not in self.backends:
                self.backends[alias] = self.make_backend(alias)
            return self.backends[alias]

    def __contains__(self, alias: object) -> bool:
        return alias in self.backends or alias in self.configs

    def make_backend(self, alias: str) -> Any:
        """Build the layer for ``alias`` from settings.

        Raises:
            ImproperlyConfigured: ``alias`` is not configured, its BACKEND
                cannot be imported, its CONFIG is rejected, or its ROUTING
                is invalid.
        """
        configs = self.configs
        if alias not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ImproperlyConfigured(
                f"No channel layer {alias!r} in settings.CHANNEL_LAYERS (configured: {known}). "
                f"Add CHANNEL_LAYERS[{alias!r}] = {{'BACKEND': ..., 'ROUTING': ...}}."
            )
        config = configs[alias]
        if not isinstance(config, dict) or "BACKEND" not in config:
            raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}] must be a dict with a 'BACKEND' key, not {config!r}")
        return build_layer(alias, config["BACKEND"], config.get("CONFIG") or {}, config.get("ROUTING", []))

    def set(self, alias: str, layer: Any) -> Any:
        """Make ``alias`` use ``layer``; return the layer it replaced (or None)."""
        with self._lock:
            old = self.backends.get(alias)
            if layer is None:
                self.backends.pop(alias, None)
            else:
                self.backends[alias] = layer
            return old

    @contextlib.contextmanager
    def override(self, alias: str, layer: Any) -> Iterator[Any]:
        """Use ``layer`` for ``alias`` inside a ``with`` block, then restore."""
        old = self.set(alias, layer)
        try:
            yield layer
        finally:
            self.set(alias, old)

    def reset(self) -> None:
        """Forget every built layer; the next lookup rebuilds from settings."""
        with self._lock:
            self.backends.clear()


def backend_class(path: str, alias: str = DEFAULT_CHANNEL_LAYER) -> type:
    """Import a BACKEND path (historical paths are mapped to ours).

    Raises:
        ImproperlyConfigured: the path cannot be imported.
    """
    from django.utils.module_loading import import_string

    if not isinstance(path, str):
        raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}]['BACKEND'] must be a dotted path, not {path!r}")
    real = BACKEND_ALIASES.get(path, path)
    try:
        return import_string(real)
    except ImportError as exc:
        shown = path if real == path else f"{path!r} (mapped to {real!r})"
        raise ImproperlyConfigured(f"Cannot import BACKEND {shown} of channel layer {alias!r}: {exc}") from exc


def build_layer(alias: str, backend: str, config: dict[str, Any], routing: Any) -> Any:
    """Instantiate a layer and attach ``router`` and ``alias`` to it."""
    from .routing import Router

    cls = backend_class(backend, alias)
    if not isinstance(config, dict):
        raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}]['CONFIG'] must be a dict, not {config!r}")
    try:
        layer = cls(**config)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"Channel layer {alias!r} ({backend}) rejected its CONFIG {config!r}: {exc}") from exc
    layer.alias = alias
    layer.router = Router(routing)
    return layer


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> Any:
    """Set Django up if needed and return the layer for ``alias`` (with its router).

    Raises:
        ImproperlyConfigured: see :meth:`ChannelLayerManager.make_backend`.
    """
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup(set_prefix=False)
    return channel_layers[alias]


channel_layers = ChannelLayerManager()

__all__ = ["BACKEND_ALIASES", "DEFAULT_CHANNEL_LAYER", "ChannelLayerManager", "channel_layers", "get_channel_layer"]
