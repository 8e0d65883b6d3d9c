"""The worker's side of Channels 2-4 consumers: a 1.x consumer that runs the ASGI application for one message.

:class:`ApplicationConsumer` is what :class:`channels.routing.Router` routes
``websocket.*`` messages, typed events and named channels to when
``ASGI_APPLICATION`` is set. For each message it rebuilds the connection's
scope and the consumer's attributes from the state the message carries, runs
the application for that one event (:func:`channels.turns.run_turn`) in the
worker thread's own event loop, runs a synchronous handler in the worker's
thread, and answers on the reply channel with one message: the frames, the
number of the turn handled and the new state (see :mod:`channels.turns` for
the wire format).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from asgi_backends.base import loggable_name

from .named import NamedChannels
from .turns import (
    ASGIApp,
    Message,
    Scope,
    Turn,
    event_from_message,
    keepable,
    pack_state,
    run_deferred_handler,
    run_turn,
    scope_from_connect,
    unpack_state,
)

logger = logging.getLogger(__name__)

__all__ = ["REPLIES_SPLIT", "ApplicationConsumer", "ReplySink", "import_application", "split_replies"]

REPLIES_SPLIT = 512 * 1024
"""Payload bytes after which a turn's frames go out in a message of their own (the layer's limit is 1 MB)."""


class ReplySink(Protocol):
    """Where a turn's output goes once the turn is over (a worker's layer, or a test communicator)."""

    def send(self, channel: str, message: Message) -> None: ...


_thread_state = threading.local()


def _thread_loop() -> tuple[asyncio.AbstractEventLoop, ThreadPoolExecutor]:
    """Return this worker thread's event loop and the thread its synchronous handlers run in."""
    loop = getattr(_thread_state, "loop", None)
    if loop is None:
        loop = _thread_state.loop = asyncio.new_event_loop()
        _thread_state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-consumer")
    return loop, _thread_state.executor


def close_thread_loop() -> None:
    """Close this thread's event loop and handler thread, if it made them (the thread is leaving)."""
    loop = getattr(_thread_state, "loop", None)
    if loop is not None:
        _thread_state.loop = None
        _thread_state.executor.shutdown(wait=False)
        loop.close()


def split_replies(replies: list[Message]) -> list[list[Message]]:
    """Split a turn's replies so that no message carries much more than :data:`REPLIES_SPLIT` bytes of frames."""
    chunks: list[list[Message]] = [[]]
    size = 0
    for reply in replies:
        payload = reply.get("text") or reply.get("bytes") or ""
        length = len(payload)
        if chunks[-1] and size + length > REPLIES_SPLIT:
            chunks.append([])
            size = 0
        chunks[-1].append(reply)
        size += length
    return chunks


class ApplicationConsumer:
    """The 1.x consumer that runs a Channels 2-4 ASGI application for WebSocket and named-channel messages.

    Routed (by :class:`channels.routing.Router`, when ``ASGI_APPLICATION``
    is set) on ``websocket.connect``, ``websocket.receive``,
    ``websocket.disconnect``, :data:`EVENT_CHANNEL` and the channels a
    ``ChannelNameRouter`` names (whose messages go to their kept instances,
    see :mod:`channels.named`).

    Args:
        application: the ASGI application, or a ``module.attribute`` /
            ``module:attribute`` path to it (imported on first use).
        alias: the channel layer consumers see as ``self.channel_layer``.

    Attributes:
        named: the named channels' consumer instances of this process.
    """

    manages_db_connections = True  # synchronous handlers tidy them in the thread they run in
    manages_replies = True  # no auto-accept: a consumer that does not accept leaves the handshake pending

    def __init__(self, application: Any, alias: str = "default") -> None:
        self._application = application
        self.alias = alias
        self.named = NamedChannels(_thread_loop)

    @property
    def application(self) -> ASGIApp:
        """The ASGI application (imported on first use when given as a path)."""
        app = self._application
        if isinstance(app, str):
            app = self._application = import_application(app)
        return app

    def __call__(self, message: Any, **kwargs: Any) -> None:
        """Run the application for one message (see the module's docstring)."""
        from .layers import get_channel_layer

        content = message.content
        channel = message.channel.name
        layer = get_channel_layer(self.alias)
        if not channel.startswith("websocket."):
            self.named.handle(self.application, channel, content, layer)
            return
        loop, executor = _thread_loop()
        reply_channel = content.get("reply_channel")
        if not isinstance(reply_channel, str):
            logger.warning("Dropping a %s message without a reply_channel", channel)
            return
        if channel == "websocket.connect":
            scope_base, attrs = scope_from_connect(content), {}
        else:
            scope_base, attrs = unpack_state(content.get("state"))
            if scope_base is None:
                # A disconnect without state: the connection never got past a failed connect (or closed
                # during its handshake, when the state-carrying disconnect follows).
                log = logger.debug if channel == "websocket.disconnect" else logger.warning
                log("Dropping a %s message for %s without a connection state", channel, loggable_name(reply_channel))
                return
        try:
            event = event_from_message(channel, content)
        except ValueError as exc:
            logger.warning("Dropping a message on %s: %s", channel, exc)
            return
        turn = Turn(event, reply_channel, layer, attrs, executor, (scope_base.get("path"), reply_channel))
        scope = dict(scope_base)
        loop.run_until_complete(run_turn(self.application, scope, turn))
        if turn.deferred is not None:
            run_deferred_handler(turn)
        if channel == "websocket.disconnect":
            return  # the interface server has forgotten the connection: nothing to answer
        state = content.get("state") if turn.failed else self._state(scope_base, turn)
        self._answer(message.channel_layer, reply_channel, turn, content.get("turn", 0), state)

    @staticmethod
    def _state(scope_base: Scope, turn: Turn) -> bytes:
        owner = type(turn.consumer).__qualname__ if turn.consumer is not None else "consumer"
        return pack_state(scope_base, keepable(owner, turn.attrs))

    @staticmethod
    def _answer(layer: ReplySink, reply_channel: str, turn: Turn, number: int, state: Any) -> None:
        chunks = split_replies(turn.replies)
        for chunk in chunks[:-1]:
            layer.send(reply_channel, {"replies": chunk})
        layer.send(reply_channel, {"replies": chunks[-1], "handled": number, "state": state})


def import_application(path: str) -> ASGIApp:
    """Import ``package.module.attribute`` (or ``package.module:attribute``).

    Raises:
        ImproperlyConfigured: it cannot be imported.
    """
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    try:
        return import_string(path.replace(":", "."))
    except ImportError as exc:
        raise ImproperlyConfigured(f"Cannot import the ASGI application {path!r}: {exc}") from exc
