"""Channel routing: which consumer runs for which message.

A routing is a list of :func:`route`, :func:`route_class` and
:func:`include` entries (or a dotted path to such a list). Keyword filters
are regular expressions matched (``re.match``) against string keys of the
message; their named groups become consumer keyword arguments. ``include``
prefixes are combined with the included routes' patterns when both start
with ``^`` (``^/chat`` + ``^/(?P<room>\\w+)/$`` → ``^/chat/(?P<room>\\w+)/$``).

:class:`Router` flattens a routing once, into a table keyed by channel name,
so matching a message costs one dict lookup plus the filters of the routes
on that channel.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable, Iterable

from django.core.exceptions import ImproperlyConfigured

from .utils import name_that_thing

Filters = dict[str, "re.Pattern[str]"]
Entry = tuple[Callable[..., Any], tuple[tuple[str, "re.Pattern[str]"], ...]]


def import_dotted(path: str, what: str) -> Any:
    """Import ``package.module.attribute``; raise ``ImproperlyConfigured`` naming ``path``."""
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ImproperlyConfigured(f"Cannot import {what} {path!r}: expected a dotted path like 'app.module.name'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ImproperlyConfigured(f"Cannot import {what} {path!r}: {exc}") from exc


def _compile_filters(kwargs: dict[str, Any], owner: str) -> Filters:
    filters: Filters = {}
    for key, value in kwargs.items():
        if isinstance(value, bytes):
            value = value.decode("ascii")
        if isinstance(value, str):
            try:
                value = re.compile(value)
            except re.error as exc:
                raise ValueError(f"Filter {key}={value!r} on {owner} is not a valid regular expression: {exc}") from exc
        elif not isinstance(value, re.Pattern):
            raise TypeError(f"Filter {key}= on {owner} must be a regex string or compiled pattern, not {value!r}")
        if value.groups != len(value.groupindex):
            raise ValueError(
                f"Filter {key}={value.pattern!r} on {owner} has unnamed groups; "
                "only named groups (?P<name>...) are allowed, they become consumer arguments"
            )
        filters[key] = value
    return filters


def combine_filters(outer: Filters, inner: Filters, where: str) -> Filters:
    """Join an include's prefixes with an included route's filters.

    Raises:
        ImproperlyConfigured: a key filtered on both sides does not start
            with ``^`` on both sides, or the joined pattern is invalid.
    """
    result = dict(inner)
    for key, prefix in outer.items():
        if key not in inner:
            result[key] = prefix
            continue
        tail = inner[key]
        if not prefix.pattern.startswith("^") or not tail.pattern.startswith("^"):
            raise ImproperlyConfigured(
                f"Cannot combine include prefix {key}={prefix.pattern!r} with {key}={tail.pattern!r} in {where}: "
                "both must start with '^' to be joined"
            )
        try:
            result[key] = re.compile(prefix.pattern + tail.pattern[1:], prefix.flags | tail.flags)
        except re.error as exc:
            raise ImproperlyConfigured(
                f"Joining {key}={prefix.pattern!r} and {tail.pattern!r} in {where} gives an invalid pattern: {exc}"
            ) from exc
    return result


class Route:
    """Send messages on ``channels`` (one name or a list) matching the filters to ``consumer``.

    Args:
        channels: a channel name or a list of names.
        consumer: a callable taking ``(message, **kwargs)``, or its dotted path.
        **kwargs: filters: regexes matched against the message's string keys.

    Raises:
        ImproperlyConfigured: the consumer path cannot be imported.
        ValueError/TypeError: a filter is not a valid regex with named groups.
    """

    def __init__(self, channels: str | Iterable[str], consumer: Any, **kwargs: Any) -> None:
        if isinstance(channels, (str, bytes)):
            channels = [channels]
        self.channels = [c.decode("ascii") if isinstance(c, bytes) else c for c in channels]
        for name in self.channels:
            if not isinstance(name, str) or not name:
                raise TypeError(f"Route channel names must be non-empty strings, not {name!r}")
        self.consumer = self._resolve_consumer(consumer)
        self.filters = _compile_filters(kwargs, f"route to {name_that_thing(self.consumer)}")

    @staticmethod
    def _resolve_consumer(consumer: Any) -> Any:
        if isinstance(consumer, str):
            consumer = import_dotted(consumer, "consumer")
        if not callable(consumer):
            raise TypeError(f"Consumer {consumer!r} is not callable")
        return consumer

    def channel_names(self) -> set[str]:
        """Return the channels this route listens on."""
        return set(self.channels)

    def flatten(self, prefixes: Filters) -> list[tuple[str, Entry]]:
        """Return ``(channel, (consumer, filters))`` rows with ``prefixes`` joined in."""
        filters = combine_filters(prefixes, self.filters, str(self))
        entry = (self.consumer, tuple(filters.items()))
        return [(channel, entry) for channel in self.channels]

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None:
        """Return ``(consumer, kwargs)`` if ``message`` matches, else ``None``."""
        if message.channel.name not in self.channels:
            return None
        kwargs = match_filters(tuple(self.filters.items()), message.content)
        return None if kwargs is None else (self.consumer, kwargs)

    def __str__(self) -> str:
        filters = ", ".join(f"{key}={value.pattern}" for key, value in self.filters.items())
        return f"{'/'.join(self.channels)}{f' ({filters})' if filters else ''} -> {name_that_thing(self.consumer)}"


class RouteClass(Route):
    """Route a class-based consumer on the channels its ``channel_names()`` returns."""

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        consumer = self._resolve_consumer(consumer)
        if not callable(getattr(consumer, "channel_names", None)):
            raise ValueError(f"route_class needs a consumer class with a channel_names() method; {consumer!r} has none")
        super().__init__(list(consumer.channel_names()), consumer, **kwargs)


class Include:
    """Include another routing (list or dotted path) under optional filter prefixes."""

    def __init__(self, routing: Any, **kwargs: Any) -> None:
        self.routing = resolve_routing(routing)
        self.prefixes = _compile_filters(kwargs, f"include({routing!r})")

    def channel_names(self) -> set[str]:
        """Return the channels of every included route."""
        names: set[str] = set()
        for entry in self.routing:
            names.update(entry.channel_names())
        return names

    def flatten(self, prefixes: Filters) -> list[tuple[str, Entry]]:
        """Return the flattened rows of every included route, prefixes joined in."""
        combined = combine_filters(prefixes, self.prefixes, f"include of {len(self.routing)} routes")
        rows: list[tuple[str, Entry]] = []
        for entry in self.routing:
            if hasattr(entry, "flatten"):
                rows.extend(entry.flatten(combined))
            else:
                rows.extend(_opaque_rows(entry, combined))
        return rows

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None:
        """Match ``message`` against the included routing (slow path; routers use the table)."""
        return Router(self.routing, defaults=False).match(message)


def _opaque_rows(entry: Any, prefixes: Filters) -> list[tuple[str, Entry]]:
    """Rows for a routing object that only offers ``match`` and ``channel_names``."""
    if not hasattr(entry, "match") or not hasattr(entry, "channel_names"):
        raise ImproperlyConfigured(f"Routing entry {entry!r} is not a route(), route_class() or include()")

    def delegate(message: Any, **kwargs: Any) -> Any:
        found = entry.match(message)
        if found is None:
            return None
        consumer, extra = found
        return consumer(message, **{**kwargs, **extra})

    delegate.__qualname__ = f"delegate to {entry!r}"
    entry_row = (delegate, tuple(prefixes.items()))
    return [(channel, entry_row) for channel in entry.channel_names()]


def resolve_routing(routing: Any) -> list[Any]:
    """Turn a routing (list, dict of channel → consumer, or dotted path) into a list.

    Raises:
        ImproperlyConfigured: the path cannot be imported or is not a routing.
    """
    if isinstance(routing, str):
        routing = import_dotted(routing, "channel routing")
    if isinstance(routing, dict):
        routing = [Route(channel, consumer) for channel, consumer in routing.items()]
    if not isinstance(routing, (list, tuple)):
        raise ImproperlyConfigured(f"Channel routing must be a list of route()/include() entries, not {routing!r}")
    return list(routing)


def match_filters(filters: tuple[tuple[str, re.Pattern[str]], ...], content: dict) -> dict[str, Any] | None:
    """Return the named groups of ``filters`` matched against ``content``, or None."""
    kwargs: dict[str, Any] = {}
    for key, regex in filters:
        value = content.get(key)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif not isinstance(value, str):
            return None
        found = regex.match(value)
        if found is None:
            return None
        if regex.groupindex:
            kwargs.update(found.groupdict())
    return kwargs


class Router:
    """The project's routing, flattened into a per-channel table.

    Args:
        routing: a list of routes, or a dotted path to one.
        defaults: append Channels' defaults after the routing: Django views
            answer ``http.request``, ``websocket.connect`` is accepted, and
            ``websocket.receive``/``websocket.disconnect`` are ignored.
        application: a Channels 2-4 ASGI application (``ASGI_APPLICATION``:
            the object or its dotted path, imported when the worker first
            needs it). With it, the defaults are replaced by the
            application (see :class:`channels.application.ApplicationConsumer`),
            which also gets typed events and the channels a
            ``ChannelNameRouter`` in it names; ``http.request`` goes to
            Django's views unless the application's ``"http"`` routes
            requests to consumers (then ``http.event`` and
            ``http.disconnect`` go to it as well).
        alias: the layer the application's consumers see as ``channel_layer``.

    Attributes:
        channels: every channel some route listens on.
    """

    def __init__(self, routing: Any, defaults: bool = True, application: Any = None,
                 alias: str = "default") -> None:
        self.root = Include(routing)
        self._app_consumer: Any = None
        self._named_channels_added = application is None
        self._ordered: set[str] = set()
        if application is not None:
            from .application import ApplicationConsumer

            self._app_consumer = ApplicationConsumer(application, alias)
            self.root.routing.extend(application_routes(self._app_consumer))
        elif defaults:
            self.root.routing.extend(default_routes())
        self._rebuild()

    def _rebuild(self) -> None:
        table: dict[str, list[Entry]] = {}
        for channel, entry in self.root.flatten({}):
            table.setdefault(channel, []).append(entry)
        self.table = {channel: tuple(entries) for channel, entries in table.items()}
        self._channels = set(self.table)

    @property
    def channels(self) -> set[str]:
        """Every channel some route listens on (importing the ASGI application, if any, to learn its named channels)."""
        if not self._named_channels_added:
            self._add_named_channels()
        return self._channels

    @property
    def ordered_channels(self) -> set[str]:
        """The channels a ``ChannelNameRouter`` in the application names: each worker process runs their messages
        one at a time, in order, on one consumer instance per channel (as Channels 4's ``runworker`` does)."""
        if not self._named_channels_added:
            self._add_named_channels()
        return self._ordered

    def _add_named_channels(self) -> None:
        """Add the routes only the imported application can tell: its HTTP consumers' and its named channels'."""
        from .http_turn import HTTP_EVENT_CHANNEL

        self._named_channels_added = True
        consumer = self._app_consumer
        if consumer.serves_http:
            self.root.routing.append(Route([HTTP_EVENT_CHANNEL, "http.disconnect"], consumer))
        names = getattr(consumer.application, "channel_names", None)
        if callable(names):
            self._ordered = set(names())
            for name in sorted(self._ordered):
                self.root.routing.append(Route(name, consumer))
        self._rebuild()

    def add_route(self, route: Any) -> None:
        """Append one route (after the defaults, so it only sees what they leave)."""
        self.root.routing.append(route)
        self._rebuild()

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None:
        """Return ``(consumer, kwargs)`` for the first route matching ``message``, or None."""
        if not self._named_channels_added:
            self._add_named_channels()
        name = message.channel.name
        entries = self.table.get(name)
        if entries is None:
            bang = name.find("!")
            if bang < 0 or (entries := self.table.get(name[: bang + 1])) is None:
                return None
        content = message.content
        for consumer, filters in entries:
            if not filters:
                return consumer, {}
            kwargs = match_filters(filters, content)
            if kwargs is not None:
                return consumer, kwargs
        return None


def null_consumer(message: Any, **kwargs: Any) -> None:
    """Do nothing (the default for unrouted ``websocket.receive``/``disconnect``)."""


def accept_consumer(message: Any, **kwargs: Any) -> None:
    """Accept a WebSocket (the default for unrouted ``websocket.connect``)."""
    message.reply_channel.send({"accept": True})


class LazyViewConsumer:
    """The default ``http.request`` consumer; builds :class:`~channels.handler.ViewConsumer` on first use."""

    manages_db_connections = True

    def __init__(self) -> None:
        self._consumer: Callable[..., Any] | None = None

    def __call__(self, message: Any, **kwargs: Any) -> None:
        consumer = self._consumer
        if consumer is None:
            from .handler import ViewConsumer

            consumer = self._consumer = ViewConsumer()
        consumer(message, **kwargs)


def default_routes() -> list[Route]:
    """Return the routes Channels adds after a project's own."""
    return [
        Route("http.request", LazyViewConsumer()),
        Route("websocket.connect", accept_consumer),
        Route("websocket.receive", null_consumer),
        Route("websocket.disconnect", null_consumer),
    ]


def application_routes(consumer: Any) -> list[Route]:
    """Return the routes that hand HTTP requests, WebSocket traffic and typed events to a Channels 2-4 application.

    The application's consumer passes an ``http.request`` straight to
    Django's views unless the application routes HTTP itself (see
    :attr:`channels.application.ApplicationConsumer.serves_http`).
    """
    from .turns import EVENT_CHANNEL

    return [
        Route("http.request", consumer),
        Route(["websocket.connect", "websocket.receive", "websocket.disconnect", EVENT_CHANNEL], consumer),
    ]


route = Route
route_class = RouteClass
include = Include

# The Channels 2-4 routers live in their own module; this is where Channels imports them from.
from .routers import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

__all__ = ["ChannelNameRouter", "Include", "ProtocolTypeRouter", "Route", "RouteClass", "Router", "URLRouter",
           "include", "route", "route_class"]
