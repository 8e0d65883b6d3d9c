"""The layer registry, built lazily from ``settings.CHANNEL_LAYERS``.

A project's ``asgi.py`` hands its layer to the interface server::

    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    from channels.asgi import get_channel_layer
    channel_layer = get_channel_layer()

``get_channel_layer`` returns the backend layer itself (any
:class:`asgi_backends.base.ChannelLayer`): that is all an interface server
needs. The registry, :data:`channel_layers`, holds a
:class:`ChannelLayerWrapper` per alias, as Channels 1.x did: the backend
(``.channel_layer``), the ``.alias`` and the project's ``.routing`` and
``.router``; every other attribute is the backend's, so
``channel_layers["default"].send(...)`` works as on the backend.

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
from typing import TYPE_CHECKING, Any, Iterator

from django.core.exceptions import ImproperlyConfigured

from asgi_backends.base import CHANNEL_LAYER_MEMBERS, ChannelLayer

if TYPE_CHECKING:
    from .routing import Router

DEFAULT_CHANNEL_LAYER = "default"

#: Backend paths of the historical packages, mapped to this project's layers,
#: so settings written for Channels 1.x keep working unchanged.
BACKEND_ALIASES: dict[str, str] = {
    "asgiref.inmemory.ChannelLayer": "asgi_backends.inmemory.ChannelLayer",
    "asgi_redis.RedisChannelLayer": "asgi_backends.redis.RedisChannelLayer",
    # These two take asgi_redis 1.4.3's CONFIG keys (Sentinel: "hosts" are the
    # sentinels); the local variant sends everything through Redis.
    "asgi_redis.RedisSentinelChannelLayer": "asgi_backends.redis.legacy.AsgiRedisSentinelChannelLayer",
    "asgi_redis.RedisLocalChannelLayer": "asgi_backends.redis.legacy.AsgiRedisLocalChannelLayer",
    # The same-machine (cross-process, no server) layer replaces asgi_ipc.
    "asgi_ipc.IPCChannelLayer": "asgi_backends.sqlite.SQLiteChannelLayer",
    # Channels 2-4 settings: channels_redis (its CONFIG forms, see ChannelsRedisChannelLayer) and the
    # in-memory layer Channels ships.
    "channels_redis.core.RedisChannelLayer": "asgi_backends.redis.channels_redis.ChannelsRedisChannelLayer",
    "channels_redis.pubsub.RedisPubSubChannelLayer": "asgi_backends.redis.channels_redis.ChannelsRedisChannelLayer",
    "channels.layers.InMemoryChannelLayer": "asgi_backends.inmemory.ChannelLayer",
}


class ChannelLayerWrapper:
    """A configured channel layer as the Django side sees it.

    Args:
        channel_layer: the backend layer.
        alias: its name in ``settings.CHANNEL_LAYERS``.
        routing: the routing (a list of routes, or a dotted path to one).

    Raises:
        TypeError: ``channel_layer`` lacks part of the
            :class:`~asgi_backends.base.ChannelLayer` contract.
        ImproperlyConfigured: the routing is invalid.

    Attributes:
        channel_layer: the backend, what an interface server is given.
        alias: the alias.
        routing: the routing as configured.
        router: the :class:`~channels.routing.Router` built from it; tests
            replace it (see :class:`channels.test.apply_routes`).

    It is a :class:`~asgi_backends.base.ChannelLayer` itself: the
    contract's members are the backend's own (bound when the wrapper is
    made), and any other attribute is looked up on the backend, so the
    wrapper can be used wherever a layer is expected.
    """

    def __init__(self, channel_layer: ChannelLayer, alias: str, routing: Any, application: Any = None) -> None:
        from .routing import Router

        if isinstance(channel_layer, ChannelLayerWrapper):
            channel_layer = channel_layer.channel_layer
        missing = [name for name in CHANNEL_LAYER_MEMBERS if not hasattr(channel_layer, name)]
        if missing:
            raise TypeError(
                f"{channel_layer!r} is not a complete channel layer (it lacks {', '.join(missing)}); "
                "subclass asgi_backends.base.BaseChannelLayer, which provides every operation"
            )
        self.channel_layer = channel_layer
        for name in CHANNEL_LAYER_MEMBERS:
            setattr(self, name, getattr(channel_layer, name))
        self.alias = alias
        self.routing = routing
        self.application = application
        self.router: Router = Router(routing, application=application, alias=alias)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the wrapper itself lacks: the backend's API.
        if name == "channel_layer":  # not set yet (during unpickling): do not recurse
            raise AttributeError(name)
        return getattr(self.channel_layer, name)

    def __str__(self) -> str:
        from .utils import name_that_thing

        return f"{self.alias} ({name_that_thing(type(self.channel_layer))})"

    def __repr__(self) -> str:
        return f"<ChannelLayerWrapper {self}>"


class ChannelLayerManager:
    """Maps aliases to :class:`ChannelLayerWrapper` objects, building each on first use from settings.

    ``channel_layers["default"]`` returns the wrapper; ``"default" in
    channel_layers`` says whether it is configured.
    """

    def __init__(self) -> None:
        self.backends: dict[str, ChannelLayerWrapper] = {}
        self._lock = threading.RLock()

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        """Return ``settings.CHANNEL_LAYERS`` (empty when unset)."""
        from django.conf import settings

        return getattr(settings, "CHANNEL_LAYERS", None) or {}

    def __getitem__(self, alias: str) -> ChannelLayerWrapper:
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

    def make_backend(self, alias: str) -> ChannelLayerWrapper:
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
        return build_layer(alias, config["BACKEND"], config.get("CONFIG") or {}, config.get("ROUTING", []),
                           asgi_application())

    def set(self, alias: str, layer: ChannelLayerWrapper | ChannelLayer | None) -> ChannelLayerWrapper | None:
        """Make ``alias`` use ``layer``; return the wrapper it replaced (or None).

        A bare backend layer is wrapped with the routing configured for
        ``alias`` (none if the alias is not configured). ``None`` forgets
        the alias, so the next lookup builds it from settings again.
        """
        if layer is not None and not isinstance(layer, ChannelLayerWrapper):
            layer = ChannelLayerWrapper(layer, alias, self.configs.get(alias, {}).get("ROUTING", []),
                                        asgi_application())
        with self._lock:
            old = self.backends.get(alias)
            if layer is None:
                self.backends.pop(alias, None)
            else:
                self.backends[alias] = layer
            return old

    @contextlib.contextmanager
    def override(self, alias: str, layer: ChannelLayerWrapper | ChannelLayer) -> Iterator[ChannelLayerWrapper]:
        """Use ``layer`` for ``alias`` inside a ``with`` block, then restore."""
        old = self.set(alias, layer)
        try:
            yield self.backends[alias]
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


def asgi_application() -> str | None:
    """Return ``settings.ASGI_APPLICATION`` (the Channels 2-4 application's dotted path), or None."""
    from django.conf import settings

    path = getattr(settings, "ASGI_APPLICATION", None)
    if path is not None and not isinstance(path, str):
        raise ImproperlyConfigured(f"ASGI_APPLICATION must be a dotted path like 'myproject.asgi.application', "
                                   f"not {path!r}")
    return path or None


def build_layer(alias: str, backend: str, config: dict[str, Any], routing: Any,
                application: Any = None) -> ChannelLayerWrapper:
    """Instantiate a backend layer and wrap it with its ``alias`` and ``routing``.

    Raises:
        ImproperlyConfigured: the backend cannot be imported, rejects
            ``config``, or ``routing`` is invalid.
    """
    cls = backend_class(backend, alias)
    if not isinstance(config, dict):
        raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}]['CONFIG'] must be a dict, not {config!r}")
    try:
        layer = cls(**config)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"Channel layer {alias!r} ({backend}) rejected its CONFIG {config!r}: {exc}") from exc
    try:
        return ChannelLayerWrapper(layer, alias, routing, application)
    except TypeError as exc:
        raise ImproperlyConfigured(f"BACKEND {backend!r} of channel layer {alias!r}: {exc}") from exc


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayer:
    """Set Django up if needed and return the backend layer for ``alias``.

    This is what a project's ``asgi.py`` hands the interface server. Code
    that needs the routing too uses ``channel_layers[alias]``.

    Raises:
        ImproperlyConfigured: see :meth:`ChannelLayerManager.make_backend`.
    """
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup(set_prefix=False)
    return channel_layers[alias].channel_layer


channel_layers = ChannelLayerManager()

__all__ = ["BACKEND_ALIASES", "DEFAULT_CHANNEL_LAYER", "ChannelLayerManager", "ChannelLayerWrapper",
           "channel_layers", "get_channel_layer"]
