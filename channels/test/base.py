"""The test case, the plain client and ``apply_routes``.

Consumers run here exactly as a worker runs them (sends held until the
consumer returns, ``DenyConnection`` answered with a close, undecided
handshakes accepted), but in the test's own thread, on a fresh in-memory
layer, inside the test's database transaction.
"""

from __future__ import annotations

import copy
import contextlib
import functools
import secrets
from typing import Any, Callable, Iterator

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import TestCase, TransactionTestCase

from ..asgi import DEFAULT_CHANNEL_LAYER, ChannelLayerWrapper, channel_layers
from ..channel import Group
from ..message import Message
from ..routing import Include, Router
from ..worker import ChannelsHooks


def fresh_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayerWrapper:
    """Return a new in-memory layer routed like ``settings.CHANNEL_LAYERS[alias]`` (empty routing if unset)."""
    from asgi_backends.inmemory import ChannelLayer

    routing = channel_layers.configs.get(alias, {}).get("ROUTING", [])
    return ChannelLayerWrapper(ChannelLayer(blocking_timeout=0.1), alias, routing)


def receive_name(channel: str) -> str:
    """Return the name to receive ``channel`` on (its ``prefix!`` for a process-specific channel)."""
    bang = channel.find("!")
    return channel if bang < 0 else channel[: bang + 1]


def next_message(channel: str, alias: str = DEFAULT_CHANNEL_LAYER) -> Message | None:
    """Take the next message off ``channel`` without waiting; return it as a Message, or None."""
    layer = channel_layers[alias]
    name, content = layer.receive([receive_name(channel)], block=False)
    if name is None:
        return None
    return Message(content, name, layer)


class ChannelTestCaseMixin:
    """Swaps a fresh in-memory layer in for each alias of ``test_channel_aliases`` around every test."""

    test_channel_aliases = [DEFAULT_CHANNEL_LAYER]

    def run(self, result: Any = None) -> Any:
        """Run one test with fresh layers swapped in (around ``setUp`` and ``tearDown`` too)."""
        # Done here rather than in _pre_setup, which Django 5.2 runs once per
        # class for TransactionTestCase: every test needs its own layers.
        old = {alias: channel_layers.set(alias, fresh_layer(alias)) for alias in self.test_channel_aliases}
        try:
            return super().run(result)  # type: ignore[misc]
        finally:
            for alias, layer in old.items():
                channel_layers.set(alias, layer)

    def get_next_message(self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER,
                         require: bool = False) -> Message | None:
        """Return the next message on ``channel`` (or None; with ``require``, fail the test instead)."""
        message = next_message(channel, alias)
        if message is None and require:
            self.fail(f"Expected a message on channel {channel!r}, found none")  # type: ignore[attr-defined]
        return message


class ChannelTestCase(ChannelTestCaseMixin, TestCase):
    """A Django ``TestCase`` with a fresh in-memory channel layer per test."""


class TransactionChannelTestCase(ChannelTestCaseMixin, TransactionTestCase):
    """A Django ``TransactionTestCase`` with a fresh in-memory channel layer per test."""


@contextlib.contextmanager
def _django_request_signals_quiet() -> Iterator[None]:
    """Keep Django from closing the test's database connection around a view.

    ``close_old_connections`` (connected to the request signals) would close
    the connection a ``TestCase`` holds its transaction on; Django's own test
    client disconnects it the same way.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class Client:
    """Sends messages as an interface server would and runs the routed consumer for them.

    Args:
        alias: the channel layer to use.

    Attributes:
        reply_channel: this client's own reply channel: a plain name, as in
            Channels 1.x, so a test can ``receive`` on it directly.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.reply_channel = f"test.reply.{secrets.token_hex(8)}"

    @property
    def channel_layer(self) -> ChannelLayerWrapper:
        """The layer this client talks to (looked up on each use, so test layer swaps apply)."""
        return channel_layers[self.alias]

    def get_next_message(self, channel: str) -> Message | None:
        """Take the next message off ``channel``; return it, or None if there is none."""
        return next_message(channel, self.alias)

    def get_consumer(self, message: Message) -> tuple[Any, dict[str, Any]] | None:
        """Return ``(consumer, kwargs)`` the routing picks for ``message``, or None."""
        return self.channel_layer.router.match(message)

    def get_consumer_by_channel(self, channel: str) -> Any:
        """Return the consumer routed for an empty-text message on ``channel``, or None (Channels 1.x)."""
        match = self.get_consumer(Message({"text": ""}, channel, self.channel_layer))
        return None if match is None else match[0]

    def join_group(self, group_name: str) -> None:
        """Add this client's reply channel to group ``group_name``."""
        Group(group_name, alias=self.alias).add(self.reply_channel)

    def send(self, to: str, content: dict | None = None) -> None:
        """Send a copy of ``content`` to channel ``to``, with this client's ``reply_channel`` filled in."""
        content = copy.deepcopy(content) if content else {}
        content.setdefault("reply_channel", self.reply_channel)
        self.channel_layer.send(to, content)

    def consume(self, channel: str, fail_on_none: bool = True) -> Any:
        """Run the routed consumer for the next message on ``channel``; return what it returned.

        Raises:
            AssertionError: (with ``fail_on_none``) no message is waiting, or
                no route matches it.
            Exception: whatever the consumer raised.
        """
        message = self.get_next_message(channel)
        if message is None:
            if fail_on_none:
                raise AssertionError(f"No message to consume on {channel!r}")
            return None
        match = self.get_consumer(message)
        if match is None:
            if fail_on_none:
                raise AssertionError(f"No route matches the message on {channel!r}: {message.content!r}")
            return None
        consumer, kwargs = match
        return run_consumer(consumer, message, kwargs)

    def send_and_consume(self, channel: str, content: dict | None = None, fail_on_none: bool = True) -> Any:
        """:meth:`send` then :meth:`consume`."""
        self.send(channel, content)
        return self.consume(channel, fail_on_none=fail_on_none)

    def receive(self) -> dict | None:
        """Return the content of the next message on this client's reply channel, or None."""
        message = self.get_next_message(self.reply_channel)
        return None if message is None else message.content


def run_consumer(consumer: Any, message: Message, kwargs: dict[str, Any]) -> Any:
    """Run ``consumer`` as a worker thread would; return its result (exceptions propagate)."""
    result: list[Any] = []

    def call(message: Message, **kwargs: Any) -> None:
        result.append(consumer(message, **kwargs))

    call.manages_db_connections = True  # type: ignore[attr-defined]  # the test owns the connection
    with _django_request_signals_quiet():
        ChannelsHooks().call(call, message, kwargs)
    return result[0] if result else None


class apply_routes:  # noqa: N801 -- the 1.x name
    """Route with ``routes`` instead of the project's routing, as a context manager or decorator.

    Args:
        routes: a routing list, one route, or a list of routing lists (each
            included).
        aliases: the layers whose routing is replaced.

    ``apply_routes`` decorates test functions and test classes (every
    ``test*`` method is wrapped).
    """

    def __init__(self, routes: Any, aliases: list[str] | None = None) -> None:
        self.routes = routes
        self.aliases = aliases or [DEFAULT_CHANNEL_LAYER]
        self._saved: list[tuple[Any, Any]] = []

    def _routing(self) -> list[Any]:
        routes = self.routes
        if not isinstance(routes, (list, tuple)):
            return [routes]
        if routes and all(isinstance(entry, (list, tuple)) for entry in routes):
            return [Include(list(entry)) for entry in routes]
        return list(routes)

    def __enter__(self) -> apply_routes:
        router = Router(self._routing())
        for alias in self.aliases:
            layer = channel_layers[alias]
            self._saved.append((layer, layer.router))
            layer.router = router
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._saved:
            layer, router = self._saved.pop()
            layer.router = router

    def __call__(self, target: Any) -> Any:
        if isinstance(target, type):
            for name, value in list(vars(target).items()):
                if name.startswith("test") and callable(value):
                    setattr(target, name, self._wrap(value))
            return target
        return self._wrap(target)

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            # A fresh instance per call: the layer to patch is looked up then.
            with apply_routes(self.routes, self.aliases):
                return func(*args, **kwargs)

        return inner
