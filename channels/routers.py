"""Channels 2-4 routers: :class:`ProtocolTypeRouter`, :class:`URLRouter`, :class:`ChannelNameRouter`.

They are ASGI applications, re-exported from :mod:`channels.routing` next to
the 1.x ``route()``/``include()``. On a worker they run again for every
event of a connection (routing is a few regex matches), so
``scope["url_route"]`` is there for every handler.

Django's own ASGI handler (``get_asgi_application()``) is never run inside
a turn: where the routing of an HTTP request reaches it (under ``"http"``,
or as a ``URLRouter`` route), :func:`call_inner` hands the request to the
worker's view path instead, which serves it as it serves every Django view
(see :class:`channels.handler.ViewConsumer`).
"""

from __future__ import annotations

from typing import Any, Callable

from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern, URLResolver

from .turns import TURN_KEY, RouteNotFound

__all__ = ["ChannelNameRouter", "ProtocolTypeRouter", "URLRouter", "call_inner", "serves_http"]


async def call_inner(application: Any, scope: dict[str, Any], receive: Callable[..., Any],
                     send: Callable[..., Any]) -> Any:
    """Call an inner application, as routers and middleware do; Django's own handler goes to the worker's view path.

    Raises:
        ValueError: Django's handler was reached for something other than
            an HTTP request (a WebSocket, a named channel).
    """
    turn = scope.get(TURN_KEY)
    if turn is not None and isinstance(application, ASGIHandler):
        turn.serve_with_views(application)
        return None
    return await application(scope, receive, send)


def serves_http(application: Any) -> bool:
    """True if ``application`` runs HTTP requests itself: a :class:`ProtocolTypeRouter` whose ``"http"`` is not
    Django's handler (without one, or with Django's, requests go straight to the worker's view path)."""
    if not isinstance(application, ProtocolTypeRouter):
        return False
    inner = application.application_mapping.get("http")
    return inner is not None and not isinstance(inner, ASGIHandler)


class ProtocolTypeRouter:
    """Send each connection to the application for its scope ``type`` (``"http"``, ``"websocket"``, ``"channel"``).

    Args:
        application_mapping: ``{scope type: ASGI application}``.

    Every type runs its application on the workers. ``"http":
    get_asgi_application()`` (or no ``"http"``) serves Django's views
    through the workers' view path, as without this router; any other
    application under ``"http"`` (a ``URLRouter`` with ``AsyncHttpConsumer``
    routes, and Django's handler as a fallback route) runs for each
    request, and where it reaches Django's handler the view path serves
    the request. The router also tells
    ``interface-server myproject.asgi:application`` which channel layer to
    serve: the project's default one.
    """

    def __init__(self, application_mapping: dict[str, Any]) -> None:
        if not isinstance(application_mapping, dict):
            raise TypeError(f"ProtocolTypeRouter takes a dict of scope type -> application, not {application_mapping!r}")
        self.application_mapping = application_mapping

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Run the application for ``scope["type"]``.

        Raises:
            ValueError: no application is configured for the type.
        """
        application = self.application_mapping.get(scope["type"])
        if application is None:
            raise ValueError(f"No application configured for scope type {scope['type']!r} (ProtocolTypeRouter has "
                             f"{sorted(self.application_mapping)!r})")
        await call_inner(application, scope, receive, send)

    def channel_layer_for_server(self) -> Any:
        """Return the default channel layer (what an interface server started on this application serves)."""
        from .asgi import get_channel_layer

        return get_channel_layer()

    def channel_names(self) -> set[str]:
        """Return the named channels a ``"channel"`` application routes (what workers must listen on)."""
        inner = self.application_mapping.get("channel")
        names = getattr(inner, "channel_names", None)
        return set(names()) if callable(names) else set()


def _prefix_pattern(pattern: Any) -> Any:
    """Return a copy of a Django URL pattern that matches a prefix (for a nested router)."""
    if isinstance(pattern, RegexPattern):
        return RegexPattern(pattern._regex, pattern.name, is_endpoint=False)
    if isinstance(pattern, RoutePattern):
        return RoutePattern(pattern._route, pattern.name, is_endpoint=False)
    raise ImproperlyConfigured(f"Unsupported URL pattern {pattern!r} in URLRouter: use path() or re_path()")


class URLRouter:
    """Route a connection by its path, with ``path()``/``re_path()`` entries as in a Django URLconf.

    Args:
        routes: a list of ``path(pattern, application)`` / ``re_path(...)``.
            An application may be another :class:`URLRouter` (nesting);
            its pattern then matches the start of the path.

    Captured groups land in ``scope["url_route"] = {"args": (...), "kwargs": {...}}``
    (nested routers add to what outer ones captured).

    Raises:
        ImproperlyConfigured: an entry is a Django ``include()``.
    """

    routes_paths = True

    def __init__(self, routes: list[Any]) -> None:
        self.routes = list(routes)
        self._table: list[tuple[Any, Callable[..., Any], dict[str, Any]]] = []
        for route in self.routes:
            if isinstance(route, URLResolver) and not callable(getattr(route, "callback", None)):
                raise ImproperlyConfigured(f"{route!r}: include() is not supported in URLRouter; "
                                           "nest URLRouter instances instead")
            callback = route.callback
            pattern = route.pattern
            if getattr(callback, "routes_paths", False):
                pattern = _prefix_pattern(pattern)
            self._table.append((pattern, callback, dict(getattr(route, "default_args", {}) or {})))

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Run the first route matching the rest of the path.

        Raises:
            RouteNotFound: no route matches (the connection is refused).
        """
        outermost = "path_remaining" not in scope
        if outermost:
            path = scope.get("path")
            if path is None:
                raise ValueError("No 'path' key in connection scope, cannot route URLs")
            root_path = scope.get("root_path", "")
            if root_path:
                if not path.startswith(root_path):
                    raise RouteNotFound(f"No route found for path {path!r}")
                path = path[len(root_path):]
        else:
            path = scope["path_remaining"]
        path = path.lstrip("/")
        for pattern, application, defaults in self._table:
            match = pattern.match(path)
            if not match:
                continue
            rest, args, kwargs = match
            kwargs = {**kwargs, **defaults}
            outer = scope.get("url_route") or {}
            inner_scope = dict(scope, path_remaining=rest, url_route={
                "args": tuple(outer.get("args", ())) + tuple(args),
                "kwargs": {**outer.get("kwargs", {}), **kwargs},
            })
            try:
                await call_inner(application, inner_scope, receive, send)
            except Resolver404:
                continue  # a nested router found nothing: try the next route
            return
        if outermost:
            raise RouteNotFound(f"No route found for path {scope.get('path')!r}")
        raise Resolver404(f"No route found for path {path!r}")


class ChannelNameRouter:
    """Route messages sent to named channels (``channel_layer.send("thumbnails", {...})``) to consumers.

    Args:
        application_mapping: ``{channel name: consumer application}``.
            Workers listen on every name. As under Channels 4's
            ``runworker``, each worker process keeps one consumer instance
            per name for its life and gives it that channel's messages one
            at a time, in order (see :mod:`channels.named`); N worker
            processes make N instances, each getting some of the messages.
    """

    def __init__(self, application_mapping: dict[str, Any]) -> None:
        if not isinstance(application_mapping, dict):
            raise TypeError(f"ChannelNameRouter takes a dict of channel name -> application, not {application_mapping!r}")
        self.application_mapping = application_mapping

    def channel_names(self) -> set[str]:
        """Return the channel names routed."""
        return set(self.application_mapping)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Run the application for ``scope["channel"]``.

        Raises:
            ValueError: the scope has no channel, or no application for it.
        """
        name = scope.get("channel")
        if name is None:
            raise ValueError("ChannelNameRouter got a scope without a 'channel' key; route it under 'channel'")
        application = self.application_mapping.get(name)
        if application is None:
            raise ValueError(f"No application configured for channel {name!r}")
        await call_inner(application, scope, receive, send)
