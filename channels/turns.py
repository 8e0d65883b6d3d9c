"""One event of one connection, run by whichever worker received it: a *turn*.

Channels 2-4 keep a consumer instance alive for a connection's lifetime in
the server's process. Here any worker may run any event of a connection,
so an instance lives for one event only:

1. the interface server sends the event (``websocket.connect``,
   ``websocket.receive``, ``websocket.disconnect``, or a typed event that
   arrived on the connection's reply channel, forwarded on
   ``websocket.event``) with the connection's **state**: an opaque msgpack
   blob holding the connection's scope and the attributes the earlier
   handlers left on the instance;
2. a worker rebuilds ``scope`` from it, runs the project's ASGI application
   (routers, middleware, then the consumer class), whose consumer restores
   its attributes, handles the one event and saves them again;
3. the worker answers on the reply channel with *one* message: the frames
   the handler sent (``replies``), the number of the turn it handled and
   the new state. The interface server forwards the connection's next
   event only then, so a connection's events run in order and one at a
   time, and a worker killed between two events loses nothing that the
   last completed handler saved.

Wire format, on top of the ASGI 1.0 messages (see docs/consumers2.rst):

* to a worker: the 1.x message plus ``turn`` (int), ``state`` (bytes) and
  ``keeps_state`` (true: the answer may leave an unchanged state out);
  typed events go on :data:`EVENT_CHANNEL` as ``{"reply_channel", "path",
  "turn", "state", "event": {...}}``;
* back: ``{"replies": [1.x reply messages], "handled": turn, "state": bytes}``
  (a ``replies`` message without ``handled`` carries output that did not
  fit in one message; to a server that said ``keeps_state``, an answer
  without ``state`` leaves the server's as it was: the handler changed
  nothing, or it failed).

HTTP requests served by consumers run the same way, with a turn of their
own (:mod:`channels.http_turn`); named channels' messages run on a kept
instance instead (:mod:`channels.named`).
"""

from __future__ import annotations

import logging
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgpack

from asgi_backends.base import loggable_name

if TYPE_CHECKING:
    from .layers import AsyncChannelLayer

logger = logging.getLogger(__name__)

__all__ = ["EVENT_CHANNEL", "FRAMEWORK_ATTRIBUTES", "TURN_KEY", "NoHandlerError", "RouteNotFound", "Turn",
           "TurnCancelled", "contain", "run_turn"]

TURN_KEY = "channels.turn"
"""The scope key under which a consumer finds its :class:`Turn` (middleware copies it along with the scope)."""

FRAMEWORK_ATTRIBUTES = frozenset({"scope", "channel_layer", "channel_name", "channel_receive", "base_send",
                                  "channel_layer_alias", "_turn"})
"""Attributes a turn sets on every consumer instance; never part of the saved state."""

EVENT_CHANNEL = "websocket.event"
"""Where the interface server forwards typed events sent to a connection's ``channel_name``."""

CLOSE_INTERNAL_ERROR = 1011

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class NoHandlerError(ValueError):
    """A consumer received an event whose ``type`` names no method of its class."""


class TurnCancelled(Exception):
    """The turn cannot reach its handler, for a reason already logged and answered (a request body that never came)."""


class Turn:
    """What the consumer of one turn needs and leaves behind.

    Args:
        event: the ASGI event to handle (``{"type": "websocket.receive", "text": ...}``).
        channel_name: the connection's reply channel: its ``channel_name``.
        layer: the awaitable layer consumers see as ``self.channel_layer``.
        attrs: the instance attributes saved by the previous turn.
        executor: where the handlers of synchronous consumers run.
        description: the connection, for log lines (or ``(path, reply channel)`` to format when needed).

    Attributes:
        replies: the 1.x reply messages the handler produced, in order.
        stop: the consumer raised ``StopConsumer`` (or handled a disconnect).
        failed: the turn raised; its attributes are not saved.
        instances: for a named channel, ``{as_asgi() application: consumer}``
            kept for the process's life: the consumer is reused, its
            attributes stay on it (nothing is packed); None for a connection.
        view: the Django ASGI handler the routing reached (an HTTP request
            the worker serves with its view path instead), or None.
    """

    __slots__ = ("event", "channel_name", "layer", "attrs", "executor", "_description", "replies", "stop",
                 "failed", "error", "send_unwrapped", "consumer", "baseline", "deferred", "instances", "view")

    def __init__(self, event: Message, channel_name: str | None, layer: AsyncChannelLayer | None,
                 attrs: dict[str, Any] | None = None, executor: ThreadPoolExecutor | None = None,
                 description: str | tuple[Any, Any] = "") -> None:
        self.event = event
        self.channel_name = channel_name
        self.layer = layer
        self.attrs: dict[str, Any] = attrs or {}
        self.executor = executor
        self._description = description
        self.replies: list[Message] = []
        self.stop = False
        self.failed = False
        self.error: BaseException | None = None
        self.send_unwrapped: Callable[[Message], Awaitable[None]] | None = None
        self.consumer: Any = None
        self.baseline: dict[str, Any] = {}
        # (handler, event, key) of a synchronous handler left for the worker's thread (channels.consumer).
        self.deferred: tuple[Any, Message, Any] | None = None
        self.instances: dict[Any, Any] | None = None
        self.view: Any = None

    def take_event(self) -> Message:
        """Return the event to handle (what ``receive()`` gives the application)."""
        return self.event

    def save_attrs(self) -> None:
        """Take the consumer's attributes to keep: those not set by the framework and new or replaced since ``__init__``."""
        if self.instances is not None:
            return  # a kept instance keeps its attributes itself
        baseline = self.baseline
        self.attrs = {
            name: value for name, value in vars(self.consumer).items()
            if name not in FRAMEWORK_ATTRIBUTES and (name not in baseline or baseline[name] is not value)
        }

    @property
    def description(self) -> str:
        """The connection, for log lines (its path and shortened reply channel, built when first needed)."""
        description = self._description
        if not isinstance(description, str):
            path, channel = description
            description = self._description = f"{path} ({loggable_name(channel)})"
        return description

    def refuse(self) -> str:
        """Answer a connection no route matched (the handshake is refused); return what was done, for the log."""
        self.replies.append({"close": True})
        return f"refusing connection {self.description}"

    def fail(self) -> str:
        """Answer after the handler failed (the socket closes with 1011); return what was done, for the log."""
        self.replies.append({"close": CLOSE_INTERNAL_ERROR})
        return f"closing connection {self.description} with 1011"

    def serve_with_views(self, handler: Any) -> None:
        """The routing reached Django's ASGI handler: only an HTTP request can be served by it.

        Raises:
            ValueError: always, for a WebSocket connection or a named channel.
        """
        raise ValueError(f"Django's ASGI handler serves HTTP requests only, not {self.description}: route it under "
                         "'http' in ProtocolTypeRouter")

    def collect(self, message: Message) -> None:
        """Record one ASGI message the consumer sent, as the 1.x reply the interface server understands.

        Raises:
            ValueError: the message type is not one a WebSocket consumer may send.
        """
        kind = message.get("type")
        if kind == "websocket.send":
            text, data = message.get("text"), message.get("bytes")
            if text is not None:
                self.replies.append({"text": text})
            elif data is not None:
                self.replies.append({"bytes": data})
            else:
                raise ValueError("websocket.send needs 'text' or 'bytes'")
        elif kind == "websocket.accept":
            reply: Message = {"accept": True}
            if message.get("subprotocol") is not None:
                reply["subprotocol"] = message["subprotocol"]
            self.replies.append(reply)
        elif kind == "websocket.close":
            code = message.get("code")
            self.replies.append({"close": code if isinstance(code, int) and not isinstance(code, bool) else True})
        else:
            raise ValueError(f"A WebSocket consumer cannot send a {kind!r} message (expected websocket.accept, "
                             "websocket.send or websocket.close)")


# -- state: the connection's scope and the attributes kept between turns ------------


def pack_state(scope_base: Scope, attrs: dict[str, Any], response: Any = None) -> bytes:
    """Return the connection's state blob: its base scope, the attributes to keep and (HTTP) the response's progress.

    Raises:
        TypeError: something in ``attrs`` cannot be packed (callers drop
            such attributes first, see :func:`keepable`).
    """
    state: dict[str, Any] = {"s": scope_base, "a": attrs}
    if response is not None:
        state["r"] = response
    return msgpack.packb(state, use_bin_type=True)


def unpack_state(blob: Any) -> tuple[Scope | None, dict[str, Any]]:
    """Return ``(base scope, attributes)`` from a state blob (``(None, {})`` for none or a damaged one)."""
    scope, attrs, _ = unpack_full_state(blob)
    return scope, attrs


def unpack_full_state(blob: Any) -> tuple[Scope | None, dict[str, Any], Any]:
    """Return ``(base scope, attributes, response progress)`` from a state blob (``(None, {}, None)`` if unusable)."""
    if not isinstance(blob, bytes):
        return None, {}, None
    try:
        state = msgpack.unpackb(blob, raw=False)
    except Exception:
        logger.warning("Dropping a connection state that does not decode")
        return None, {}, None
    if not isinstance(state, dict):
        return None, {}, None
    scope, attrs = state.get("s"), state.get("a")
    return (scope if isinstance(scope, dict) else None), (attrs if isinstance(attrs, dict) else {}), state.get("r")


_warned_unkeepable: set[tuple[str, str]] = set()


def pack_kept_state(owner: str, scope_base: Scope, attrs: dict[str, Any], response: Any = None) -> bytes:
    """Return :func:`pack_state` of the attributes msgpack can carry; ``owner`` names the consumer in warnings.

    The state is packed once; only when that fails are the attributes
    sorted out (:func:`keepable`) and the rest packed.
    """
    try:
        return pack_state(scope_base, attrs, response)
    except (TypeError, ValueError, OverflowError):
        return pack_state(scope_base, keepable(owner, attrs), response)


def keepable(owner: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Return the attributes of ``attrs`` msgpack can carry to the next turn.

    The others are dropped (the next turn's instance will not have them);
    each ``(class, attribute)`` is logged once per process with a warning.
    """
    kept: dict[str, Any] = {}
    for name, value in attrs.items():
        try:
            msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            key = (owner, name)
            if key not in _warned_unkeepable:
                _warned_unkeepable.add(key)
                logger.warning(
                    "%s.%s (%s) is not kept for the connection's next event: state between events must be "
                    "msgpack-serialisable (str, bytes, int, float, bool, None, lists and dicts of them); "
                    "it is missing on the next event's instance (this is logged once)",
                    owner, name, type(value).__name__,
                )
            continue
        kept[name] = value
    return kept


# -- the scope of a connection ---------------------------------------------------


def connection_scope(kind: str, content: Message, scheme: str, http_version: str = "1.1") -> Scope:
    """Return the scope fields a 1.x ``http.request`` or ``websocket.connect`` message gives (``type`` ``kind``).

    ``scheme`` is used when the message names none. Malformed header
    entries are dropped; a ``str`` query string is encoded as latin-1.
    """
    headers = [list(pair) for pair in content.get("headers") or () if isinstance(pair, (list, tuple)) and len(pair) == 2]
    query = content.get("query_string", b"")
    if isinstance(query, str):
        query = query.encode("latin-1")
    path = content.get("path") or "/"
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": http_version,
        "scheme": content.get("scheme") or scheme,
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path,
        "query_string": query,
        "root_path": content.get("root_path") or "",
        "headers": headers,
        "client": content.get("client"),
        "server": content.get("server"),
    }


def scope_from_connect(content: Message) -> Scope:
    """Return the base WebSocket scope of a connection from its ``websocket.connect`` message.

    What the routers and middleware add (``url_route``, ``cookies``,
    ``session``, ``user``) is added again on every turn.
    """
    scope = connection_scope("websocket", content, "ws")
    subprotocols: list[str] = []
    for name, value in scope["headers"]:
        if name == b"sec-websocket-protocol" and isinstance(value, bytes):
            subprotocols.extend(part.strip() for part in value.decode("latin-1").split(",") if part.strip())
    scope["subprotocols"] = subprotocols
    return scope


def event_from_message(channel: str, content: Message) -> Message:
    """Return the ASGI 3 event a 1.x WebSocket message stands for.

    Raises:
        ValueError: a ``websocket.event`` message without a typed event.
    """
    if channel == "websocket.receive":
        event: Message = {"type": "websocket.receive"}
        if content.get("text") is not None:
            event["text"] = content["text"]
        else:
            event["bytes"] = content.get("bytes")
        return event
    if channel == "websocket.connect":
        return {"type": "websocket.connect"}
    if channel == "websocket.disconnect":
        return {"type": "websocket.disconnect", "code": content.get("code", 1000)}
    event = content.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError(f"a {EVENT_CHANNEL} message must carry an 'event' dict with a str 'type', not {event!r}")
    return event


# -- running a turn ------------------------------------------------------------------


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _failing_method(exc: BaseException) -> tuple[str, str]:
    """Return ``(class name, method name)`` of the innermost consumer or middleware frame that raised.

    A frame of the project's own code is preferred to one of this
    package's (``handle`` calling ``send_body`` with a str is ``handle``'s fault).
    """
    found = ours = ("?", "?")
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if owner is not None and (hasattr(owner, "dispatch") or hasattr(owner, "inner")):
            found = (type(owner).__qualname__, frame.f_code.co_name)
            if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
                ours = found
    return ours if ours[0] != "?" else found


async def run_turn(application: ASGIApp, scope: Scope, turn: Turn) -> None:
    """Run ``application`` for the one event of ``turn``; contain and log what it raises.

    A failure is logged with the class, the method and the connection, and
    ends the connection: ``{"close": 1011}`` is appended to the replies
    (before the handshake was accepted that refuses it). A missing handler
    gets one line without a traceback.
    """
    scope[TURN_KEY] = turn
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            raise RuntimeError("a consumer on a worker handles one event per call; the next comes in a new call")
        delivered = True
        return turn.take_event()

    async def send(message: Message) -> None:
        turn.collect(message)

    turn.send_unwrapped = send
    try:
        await application(scope, receive, send)
    except Exception as exc:
        contain(turn, exc)


def run_deferred_handler(turn: Turn) -> None:
    """Run what the turn left for the worker's thread (a synchronous handler), containing its failure."""
    from .consumer import run_deferred

    try:
        run_deferred(turn)
    except Exception as exc:
        contain(turn, exc)


def contain(turn: Turn, exc: Exception) -> None:
    """Log a failed turn (class, method, connection) and answer as its kind asks (:meth:`Turn.fail`, :meth:`Turn.refuse`)."""
    turn.failed, turn.error, turn.deferred = True, exc, None
    if isinstance(exc, TurnCancelled):
        turn.fail()  # logged and answered where it was raised
    elif isinstance(exc, NoHandlerError):
        logger.error("%s; %s", exc, turn.fail())
    elif isinstance(exc, RouteNotFound):
        logger.warning("%s; %s", exc, turn.refuse())
    else:
        owner, method = _failing_method(exc)
        logger.error("%s.%s raised handling %s; %s", owner, method, turn.event.get("type"), turn.fail(), exc_info=exc)


class RouteNotFound(ValueError):
    """No route of a router matched the connection (it is refused, with a warning naming the path)."""
