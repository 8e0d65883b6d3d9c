"""The worker's side of Channels 2-4 consumers: a 1.x consumer that runs the ASGI application for one message.

:class:`ApplicationConsumer` is what :class:`channels.routing.Router` routes
``websocket.*`` and ``http.*`` messages, typed events and named channels to
when ``ASGI_APPLICATION`` is set. For each message of a connection (a
WebSocket, or an HTTP request served by a consumer) it rebuilds the scope
and the consumer's attributes from the state the message carries, runs the
application for that one event (:func:`channels.turns.run_turn`) in the
worker thread's own event loop, runs a synchronous handler in the worker's
thread, and answers on the reply channel: for a WebSocket one message with
the frames, the number of the turn handled and the new state (see
:mod:`channels.turns`); for HTTP the response messages as the consumer
sends them, then the turn's end (see :mod:`channels.http_turn`). A named
channel's messages go to its kept instance (:mod:`channels.named`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from asgi_backends.base import loggable_name
from asgi_backends.retry import policy_for, send_retrying
from worker.fetch import send_with_fetch

from .http_turn import BODY_TIMEOUT, HTTP_EVENT_CHANNEL, HttpTurn, scope_from_request
from .named import NamedChannels
from .turns import (
    EVENT_CHANNEL,
    ASGIApp,
    Message,
    Scope,
    Turn,
    contain,
    event_from_message,
    pack_kept_state,
    run_deferred_handler,
    run_turn,
    scope_from_connect,
    unpack_full_state,
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


WEBSOCKET_CHANNELS = frozenset({"websocket.connect", "websocket.receive", "websocket.disconnect", EVENT_CHANNEL})
HTTP_CHANNELS = frozenset({"http.request", HTTP_EVENT_CHANNEL, "http.disconnect"})

REPLY_SEND_TIMEOUT = 30.0
"""Seconds an HTTP consumer's output may wait for room on a full reply channel (as the view path's)."""


class ApplicationConsumer:
    """The 1.x consumer that runs a Channels 2-4 ASGI application for WebSocket, HTTP and named-channel messages.

    Routed (by :class:`channels.routing.Router`, when ``ASGI_APPLICATION``
    is set) on ``websocket.connect``, ``websocket.receive``,
    ``websocket.disconnect``, :data:`EVENT_CHANNEL`, ``http.request`` (and,
    when the application serves HTTP itself, :data:`HTTP_EVENT_CHANNEL`
    and ``http.disconnect``) and the channels a ``ChannelNameRouter`` names.
    An ``http.request`` goes to Django's views (the worker's view path)
    when the application's ``"http"`` is Django's own ASGI handler, or
    when its routing reaches that handler.

    Args:
        application: the ASGI application, or a ``module.attribute`` /
            ``module:attribute`` path to it (imported on first use).
        alias: the channel layer consumers see as ``self.channel_layer``.
        body_timeout: seconds an HTTP consumer's request waits for each
            chunk of a large body before it is answered 408.

    Attributes:
        named: the named channels' consumer instances of this process.
    """

    manages_db_connections = True  # synchronous handlers tidy them in the thread they run in
    manages_replies = True  # no auto-accept: a consumer that does not accept leaves the handshake pending

    def __init__(self, application: Any, alias: str = "default", body_timeout: float = BODY_TIMEOUT) -> None:
        self._application = application
        self.alias = alias
        self.body_timeout = body_timeout
        self.named = NamedChannels(_thread_loop)
        self._serves_http: bool | None = None
        self._views: Any = None

    @property
    def application(self) -> ASGIApp:
        """The ASGI application (imported on first use when given as a path)."""
        app = self._application
        if isinstance(app, str):
            app = self._application = import_application(app)
        return app

    @property
    def serves_http(self) -> bool:
        """True if the application runs HTTP requests itself (its ``"http"`` is more than Django's handler)."""
        serves = self._serves_http
        if serves is None:
            from .routers import serves_http

            serves = self._serves_http = serves_http(self.application)
        return serves

    def views(self, message: Any) -> None:
        """Serve an ``http.request`` with Django's URLconf, middleware and views (the worker's view path)."""
        views = self._views
        if views is None:
            from .routing import LazyViewConsumer

            views = self._views = LazyViewConsumer()
        views(message)

    def __call__(self, message: Any, **kwargs: Any) -> None:
        """Run the application for one message (see the module's docstring)."""
        from .layers import get_channel_layer

        channel = message.channel.name
        if channel == "http.request" and not self.serves_http:
            self.views(message)
            return
        layer = get_channel_layer(self.alias)
        if channel in WEBSOCKET_CHANNELS:
            self._websocket(message, layer)
        elif channel in HTTP_CHANNELS:
            self._http(message, layer)
        else:
            self.named.handle(self.application, channel, message.content, layer)

    def _websocket(self, message: Any, layer: Any) -> None:
        content = message.content
        channel = message.channel.name
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
        previous = content.get("state")
        state = previous if turn.failed else self._state(scope_base, turn)
        if state is not None and state == previous and content.get("keeps_state"):
            state = None  # what the server holds already: most events change nothing, and it need not travel
        self._answer(message.channel_layer, reply_channel, turn, content.get("turn", 0), state)

    def _http(self, message: Any, layer: Any) -> None:
        content = message.content
        channel = message.channel.name
        reply_channel = content.get("reply_channel")
        if not isinstance(reply_channel, str):
            logger.warning("Dropping a %s message without a reply_channel", channel)
            return
        body_channel = None
        if channel == "http.request":
            scope_base, attrs, response = scope_from_request(content), {}, None
            event: Message = {"type": "http.request", "body": content.get("body") or b"", "more_body": False}
            body_channel = content.get("body_channel")
        else:
            scope_base, attrs, response = unpack_full_state(content.get("state"))
            if scope_base is None:
                # A disconnect without state: a request Django's views served (or one whose consumer was done).
                log = logger.debug if channel == "http.disconnect" else logger.warning
                log("Dropping a %s message for %s without a request state", channel, loggable_name(reply_channel))
                return
            event = {"type": "http.disconnect"} if channel == "http.disconnect" else content.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                logger.warning("Dropping a message on %s: it must carry an 'event' dict with a str 'type', not %r",
                               channel, event)
                return
        backend = message.channel_layer
        policy = policy_for(REPLY_SEND_TIMEOUT)

        def sink(reply: Message) -> None:
            # The turn's answer (its last message) carries the worker's next receive.
            if not (turn.answered and send_with_fetch(backend, reply_channel, reply)):
                send_retrying(backend, reply_channel, reply, policy)

        loop, executor = _thread_loop()
        turn = HttpTurn(event, reply_channel, layer, attrs, executor, (scope_base.get("path"), reply_channel), sink,
                        response, body_channel if isinstance(body_channel, str) else None, self.body_timeout)
        loop.run_until_complete(run_turn(self.application, dict(scope_base), turn))
        if turn.deferred is not None:
            run_deferred_handler(turn)
        if turn.view is not None and channel == "http.request" and not turn.failed:
            self.views(message)  # the routing reached Django's handler: the worker's view path answers
            return
        if channel == "http.disconnect":
            return  # the interface server has forgotten the request: nothing to answer
        if turn.view is not None and not turn.failed:
            contain(turn, RuntimeError(f"the routing of {turn.description} reached Django's views after the request "
                                       "had gone to a consumer"))
        turn.conclude(scope_base, content.get("turn", 0))

    @staticmethod
    def _state(scope_base: Scope, turn: Turn) -> bytes:
        owner = type(turn.consumer).__qualname__ if turn.consumer is not None else "consumer"
        return pack_kept_state(owner, scope_base, turn.attrs)

    @staticmethod
    def _answer(layer: ReplySink, reply_channel: str, turn: Turn, number: int, state: bytes | None) -> None:
        """Send the turn's frames and its end; ``state`` None leaves the server's copy as it is."""
        chunks = split_replies(turn.replies)
        for chunk in chunks[:-1]:
            layer.send(reply_channel, {"replies": chunk})
        end: Message = {"replies": chunks[-1], "handled": number}
        if state is not None:
            end["state"] = state
        if not send_with_fetch(layer, reply_channel, end):  # the turn's end carries the worker's next receive
            layer.send(reply_channel, end)


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
