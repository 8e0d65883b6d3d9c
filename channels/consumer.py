"""Channels 2-4 consumers: :class:`AsyncConsumer` and :class:`SyncConsumer`, run one event at a time on workers.

A consumer class handles typed events: an event ``{"type": "chat.message"}``
calls the method ``chat_message(self, event)``. ``Consumer.as_asgi()``
returns the ASGI application routers point at.

On this project's workers an instance of a connection's consumer lives
for **one event** (see :mod:`channels.turns`): each event of a connection
builds a fresh instance with ``cls(**initkwargs)``, sets ``scope``,
``channel_name`` and ``channel_layer``, restores the attributes the
previous handlers left, handles the event and saves the attributes again.
Attributes set in ``__init__`` from ``as_asgi(**initkwargs)`` are made
again every time and only kept when a handler replaced them. Kept
attributes must be msgpack-serialisable; others are dropped with a warning
(logged once).

A consumer of a named channel (``ChannelNameRouter``) is different: as
under Channels 4's ``runworker``, each worker process keeps one instance
per channel name for its whole life and hands it that channel's messages
one at a time, in order; its attributes simply stay on it.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable

from asgiref.sync import async_to_sync, sync_to_async

from .exceptions import StopConsumer
from .turns import FRAMEWORK_ATTRIBUTES, TURN_KEY, NoHandlerError, Turn

__all__ = ["AsyncConsumer", "SyncConsumer", "get_handler_name"]


def get_handler_name(message: dict[str, Any]) -> str:
    """Return the method name for ``message``'s ``type`` (dots become underscores).

    Raises:
        ValueError: the message has no str ``type``, or it starts with an underscore.
    """
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str):
        raise ValueError(f"Incoming message has no str 'type' key: {message!r}")
    if kind.startswith("_"):
        raise ValueError(f"Malformed type in message {kind!r}: it may not start with an underscore")
    return kind.replace(".", "_")


class AsyncConsumer:
    """Base of the asynchronous consumers: ``async def`` handlers, ``await self.send(...)``.

    Attributes (set for each event):
        scope: the connection's scope, rebuilt from the connection on every event.
        channel_name: the connection's channel (its reply channel): what
            ``group_add`` and ``channel_layer.send`` take to reach it.
        channel_layer: the awaitable layer (:class:`channels.layers.AsyncChannelLayer`),
            or None when no layer is configured.
    """

    _sync = False
    channel_layer_alias = "default"

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Handle the one event of the turn in ``scope`` (see :mod:`channels.turns`).

        Raises:
            RuntimeError: called outside a worker turn (by an ASGI server).
        """
        turn: Turn | None = scope.get(TURN_KEY)
        if turn is None:
            raise RuntimeError(
                f"{type(self).__qualname__} runs on this project's workers (interface-server + runworker, or "
                "runserver), one event at a time; test it with channels.testing.WebsocketCommunicator"
            )
        kept = turn.instances is not None
        if not kept:
            baseline = dict(self.__dict__)
        self.scope = scope
        self.channel_layer = turn.layer
        self.channel_name = turn.channel_name
        self.channel_receive = None
        self.base_send = send
        self._turn = turn
        turn.consumer = self
        if not kept:
            self.__dict__.update(turn.attrs)
            turn.baseline = baseline
        try:
            await self.dispatch(turn.take_event())
        except StopConsumer:
            turn.stop = True
        if turn.deferred is None:
            turn.save_attrs()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler for ``message``'s type.

        Raises:
            NoHandlerError: the class has no method for the type.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise _no_handler(self, message)
        await handler(message)

    async def send(self, message: dict[str, Any]) -> None:
        """Send an ASGI message (``websocket.send``, ``websocket.accept``, ``websocket.close``) to the client."""
        await self.base_send(message)

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> Callable[..., Any]:
        """Return the ASGI application that makes an instance (``cls(**initkwargs)``) for each event.

        Raises:
            TypeError: a keyword is not an attribute of the class (a typo would otherwise pass silently).
        """
        for key in initkwargs:
            if not hasattr(cls, key):
                raise TypeError(f"{cls.__qualname__}.as_asgi() got {key!r}, which is not an attribute of the class")

        async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            turn = scope.get(TURN_KEY)
            kept = turn.instances if turn is not None else None
            if kept is None:
                consumer = cls(**initkwargs)
            else:
                # A named channel's consumer lives as long as the worker process (one per channel).
                consumer = kept.get(app)
                if consumer is None:
                    consumer = kept[app] = cls(**initkwargs)
            await consumer(scope, receive, send)

        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        functools.update_wrapper(app, cls, updated=())
        return app

    def __init__(self, **initkwargs: Any) -> None:
        for key, value in initkwargs.items():
            setattr(self, key, value)


#: Synchronous handlers (class, method name) seen calling ``async_to_sync``: on a worker they run in the
#: thread beside the turn's event loop, where ``async_to_sync`` reuses that loop.
_USES_ASYNC_TO_SYNC: set[tuple[type, str]] = set()

#: Set while a worker runs a synchronous handler in its own thread (see :class:`SyncConsumer`).
running_sync_handler: contextvars.ContextVar[tuple[type, str] | None] = contextvars.ContextVar(
    "running_sync_handler", default=None)


def note_async_to_sync() -> None:
    """Record that the synchronous handler running (if any) awaits layer calls through ``async_to_sync``."""
    key = running_sync_handler.get()
    if key is not None:
        _USES_ASYNC_TO_SYNC.add(key)


class SyncConsumer(AsyncConsumer):
    """Base of the synchronous consumers: plain methods, run in a thread where blocking (the ORM) is fine.

    ``async_to_sync(self.channel_layer.group_send)(...)`` works in them, as in Channels.

    On a worker a handler runs in the worker's own thread once the routers
    and middleware have run (no thread hop, no event loop running: the ORM
    may be used). A handler seen calling the layer through
    ``async_to_sync`` -- which from a thread without an event loop starts a
    new one for each call -- runs from then on in a thread beside the
    turn's event loop, which ``async_to_sync`` then reuses.
    """

    _sync = True

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler for ``message`` where synchronous code may block.

        Raises:
            NoHandlerError: the class has no method for the type.
        """
        name = get_handler_name(message)
        handler = getattr(self, name, None)
        if handler is None:
            raise _no_handler(self, message)
        turn = getattr(self, "_turn", None)
        executor = turn.executor if turn is not None else None
        if executor is None:
            await sync_to_async(_run_sync)(handler, message)
            return
        key = (type(self), name)
        if key in _USES_ASYNC_TO_SYNC:
            await sync_to_async(_run_sync, thread_sensitive=False, executor=executor)(handler, message)
        else:
            turn.deferred = (handler, message, key)  # run by the worker once the event loop has returned

    def send(self, message: dict[str, Any]) -> None:  # type: ignore[override]
        """Send an ASGI message to the client (synchronously)."""
        turn = getattr(self, "_turn", None)
        if turn is not None and self.base_send is turn.send_unwrapped:
            turn.collect(message)  # no middleware wraps send: no need to go through the event loop
        else:
            async_to_sync(self.base_send)(message)


def run_deferred(turn: Turn) -> None:
    """Run the synchronous handler a turn deferred, in the calling (worker) thread, then save the attributes.

    Raises:
        Exception: whatever the handler raised (``StopConsumer`` is handled).
    """
    handler, message, key = turn.deferred
    turn.deferred = None
    token = running_sync_handler.set(key)
    try:
        _run_sync(handler, message)
    except StopConsumer:
        turn.stop = True
    finally:
        running_sync_handler.reset(token)
    turn.save_attrs()


def _run_sync(handler: Callable[[dict[str, Any]], Any], message: dict[str, Any]) -> None:
    """Call a synchronous handler with fresh database connections (as Django's request cycle would)."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        handler(message)
    finally:
        close_old_connections()


def _no_handler(consumer: Any, message: dict[str, Any]) -> NoHandlerError:
    kind = message.get("type")
    name = get_handler_name(message)
    return NoHandlerError(
        f"{type(consumer).__module__}.{type(consumer).__qualname__} has no handler for message type {kind!r} "
        f"(define a method {name}(self, event))"
    )
