"""WebSocket consumers: raw frames, JSON frames, and several JSON streams on one socket.

* :class:`WebsocketConsumer` -- ``connect``/``receive``/``disconnect``
  handlers, ``send``/``close``/``group_send``, groups joined on connect and
  left on disconnect, optional user/session and ordering decorators.
* :class:`JsonWebsocketConsumer` -- the same with JSON text frames.
* :class:`WebsocketMultiplexer` / :class:`WebsocketDemultiplexer` -- frames
  ``{"stream": name, "payload": {...}}`` dispatched to one consumer per
  stream, and replies wrapped the same way.
"""

from __future__ import annotations

import builtins
import json
import logging
from typing import Any, Callable, Iterable

from django.core.serializers.json import DjangoJSONEncoder

from asgi_backends.base import loggable_name

from ..auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
)
from ..channel import Group
from ..exceptions import DenyConnection
from ..message import Message
from ..sessions import channel_and_http_session, enforce_ordering
from .base import BaseConsumer

logger = logging.getLogger(__name__)

CONNECT = "websocket.connect"


def frame(text: str | None = None, bytes: bytes | None = None, close: bool | int = False) -> dict[str, Any]:
    """Return a reply-channel message carrying a frame and/or a close.

    Raises:
        ValueError: neither ``text``, ``bytes`` nor ``close`` was given, or
            both ``text`` and ``bytes`` were.
        TypeError: ``text`` is not a str or ``bytes`` not bytes.
    """
    message: dict[str, Any] = {}
    if text is not None and bytes is not None:
        raise ValueError("Send either text or bytes in one frame, not both")
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"WebSocket text must be a str, not {type(text).__name__} ({text!r:.80})")
        message["text"] = text
    elif bytes is not None:
        if not isinstance(bytes, (builtins.bytes, bytearray)):
            raise TypeError(f"WebSocket bytes must be bytes, not {type(bytes).__name__}")
        message["bytes"] = builtins.bytes(bytes)
    if close:
        message["close"] = close
    if not message:
        raise ValueError("Nothing to send: pass text, bytes or close")
    return message


class WebsocketConsumer(BaseConsumer):
    """Handle one WebSocket endpoint's connect, receive and disconnect messages.

    Override :meth:`connect`, :meth:`receive` and :meth:`disconnect`; the
    raw handlers in ``method_mapping`` do the bookkeeping around them.

    Class attributes (besides :class:`BaseConsumer`'s):
        groups: groups every connection joins (or override
            :meth:`connection_groups`).
        http_user: ``message.user`` from the HTTP session on connect, kept in
            the channel session for later messages.
        http_user_and_session: as ``http_user``, and ``message.http_session``
            on every message too.
        strict_ordering: run a connection's messages strictly in order.
        slight_ordering: run ``connect`` before anything else of the
            connection; the rest in any order.
    """

    method_mapping = {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    groups: Iterable[str] | None = None
    http_user = False
    http_user_and_session = False
    strict_ordering = False
    slight_ordering = False

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """Return the raw handler wrapped in the session, user and ordering decorators asked for.

        Raises:
            ValueError: both ``strict_ordering`` and ``slight_ordering`` are set.
        """
        if self.strict_ordering and self.slight_ordering:
            raise ValueError(f"{type(self).__name__} sets both strict_ordering and slight_ordering; choose one")
        connecting = message.channel.name == CONNECT
        if self.http_user_and_session:
            handler = getattr(self, self.method_name_for(message.channel.name))
            if connecting:
                handler = channel_and_http_session_user_from_http(handler)
            else:
                handler = channel_and_http_session(channel_session_user(handler))
        elif self.http_user:
            handler = getattr(self, self.method_name_for(message.channel.name))
            handler = (channel_session_user_from_http if connecting else channel_session_user)(handler)
        else:
            handler = super().get_handler(message, **kwargs)
        if self.strict_ordering:
            return enforce_ordering(handler)
        if self.slight_ordering:
            return enforce_ordering(handler, slight=True)
        return handler

    @property
    def multiplexer(self) -> WebsocketMultiplexer | None:
        """The stream this consumer answers on when a demultiplexer called it, else None."""
        return self.kwargs.get("multiplexer")

    def connection_groups(self, **kwargs: Any) -> Iterable[str]:
        """Return the groups a connection joins on connect and leaves on disconnect (default ``groups``)."""
        return self.groups or []

    def _groups(self, **kwargs: Any) -> list[str]:
        groups = self.connection_groups(**kwargs)
        if isinstance(groups, (str, bytes)):
            raise TypeError(
                f"{type(self).__name__}.connection_groups() must return a list of names, not the string {groups!r}"
            )
        return list(groups)

    # -- raw handlers (what method_mapping points at) --------------------------

    def raw_connect(self, message: Message, **kwargs: Any) -> None:
        """Join the connection groups, then call :meth:`connect`.

        If ``connect`` raises anything (``DenyConnection`` or a bug), the
        groups are left again before the exception goes on: the handshake
        is refused, and a membership left behind would outlive the socket
        until ``group_expiry``.
        """
        groups = self._groups(**kwargs)
        for name in groups:
            Group(name, channel_layer=message.channel_layer).add(message.reply_channel)
        try:
            self.connect(message, **kwargs)
        except BaseException:
            for name in groups:
                Group(name, channel_layer=message.channel_layer).discard(message.reply_channel)
            raise

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """Call :meth:`receive` with the frame's ``text`` or ``bytes``."""
        if message.get("text") is not None:
            self.receive(text=message["text"], **kwargs)
        else:
            self.receive(bytes=message.get("bytes"), **kwargs)

    def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        """Leave the connection groups, then call :meth:`disconnect`."""
        for name in self._groups(**kwargs):
            Group(name, channel_layer=message.channel_layer).discard(message.reply_channel)
        self.disconnect(message, **kwargs)

    # -- what subclasses override ----------------------------------------------

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept the connection (override to check it; raise ``DenyConnection`` to refuse with 403)."""
        if self.multiplexer is None:  # under a demultiplexer, it accepts for every stream
            self.accept()

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        """Handle one frame (``text`` or ``bytes``); does nothing by default."""

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Handle the end of the connection; does nothing by default."""

    # -- sending ---------------------------------------------------------------

    def accept(self) -> None:
        """Complete the handshake."""
        self.message.reply_channel.send({"accept": True})

    def send(self, text: str | None = None, bytes: bytes | None = None, close: bool | int = False) -> None:
        """Send a frame to this connection; ``close`` (True or a code) closes it afterwards.

        Raises:
            ValueError/TypeError: see :func:`frame`.
        """
        self.message.reply_channel.send(frame(text, bytes, close))

    def close(self, code: bool | int | None = None) -> None:
        """Close this connection (with ``code``, or the normal 1000 when omitted)."""
        self.message.reply_channel.send({"close": True if code is None else code})

    @classmethod
    def group_send(cls, name: str, text: str | None = None, bytes: bytes | None = None,
                   close: bool | int = False) -> None:
        """Send a frame (and/or a close) to every connection in group ``name``."""
        Group(name).send(frame(text, bytes, close))


class JsonWebsocketConsumer(WebsocketConsumer):
    """A :class:`WebsocketConsumer` whose frames are JSON text.

    :meth:`receive` gets the decoded value; :meth:`send` and
    :meth:`group_send` encode. A frame that is not valid JSON, or a binary
    frame, is answered with an error frame ``{"error": "..."}`` (see
    :meth:`invalid_frame`); the consumer is not called and the connection
    stays open. Set ``close_on_invalid_frame = True`` to close it instead
    (code 1007, "invalid frame payload data").
    """

    close_on_invalid_frame = False

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """Decode the frame and call :meth:`receive`, or answer a bad frame with :meth:`invalid_frame`."""
        text = message.get("text")
        if text is None:
            self.invalid_frame("expected a JSON text frame, got a binary frame", **kwargs)
            return
        try:
            content = self.decode_json(text)
        except ValueError as exc:
            self.invalid_frame(f"invalid JSON: {exc}", **kwargs)
            return
        self.receive(content, **kwargs)

    def invalid_frame(self, error: str, **kwargs: Any) -> None:
        """Tell the client its frame was rejected (and close, if ``close_on_invalid_frame``)."""
        logger.info("Rejected a frame from %s on %s: %s", loggable_name(self.message.reply_channel.name),
                    self.message.get("path"), error)
        self.send({"error": error}, close=1007 if self.close_on_invalid_frame else False)

    def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Handle one decoded JSON value; does nothing by default."""

    def send(self, content: Any, close: bool | int = False) -> None:  # type: ignore[override]
        """Send ``content`` as a JSON text frame (wrapped in its stream when demultiplexed)."""
        if self.multiplexer is not None:
            self.multiplexer.send(content)
            if close:
                self.close(close if close is not True else None)
            return
        super().send(text=self.encode_json(content), close=close)

    @classmethod
    def group_send(cls, name: str, content: Any, close: bool | int = False) -> None:  # type: ignore[override]
        """Send ``content`` as JSON to every connection in group ``name``."""
        Group(name).send(frame(cls.encode_json(content), close=close))

    @classmethod
    def decode_json(cls, text: str) -> Any:
        """Return the value encoded in ``text``. Raises ``ValueError`` if it is not JSON."""
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Return ``content`` as JSON text (dates, decimals and UUIDs as Django encodes them)."""
        return json.dumps(content, cls=DjangoJSONEncoder)


class WebsocketMultiplexer:
    """Sends payloads to one connection (or a group) wrapped as ``{"stream": ..., "payload": ...}``.

    A :class:`WebsocketDemultiplexer` hands one to each stream's consumer as
    the ``multiplexer`` keyword argument.
    """

    def __init__(self, stream: str, reply_channel: Any) -> None:
        self.stream = stream
        self.reply_channel = reply_channel

    def send(self, payload: Any) -> None:
        """Send ``payload`` on this stream of the connection."""
        self.reply_channel.send(self.encode(self.stream, payload))

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Return ``content`` as JSON text."""
        return json.dumps(content, cls=DjangoJSONEncoder)

    @classmethod
    def encode(cls, stream: str, payload: Any) -> dict[str, str]:
        """Return the reply-channel message carrying ``payload`` on ``stream``."""
        return {"text": cls.encode_json({"stream": stream, "payload": payload})}

    @classmethod
    def group_send(cls, name: str, stream: str, payload: Any, close: bool = False) -> None:
        """Send ``payload`` on ``stream`` to every connection in group ``name``."""
        message: dict[str, Any] = cls.encode(stream, payload)
        if close:
            message["close"] = True
        Group(name).send(message)

    def __repr__(self) -> str:
        return f"<WebsocketMultiplexer stream={self.stream!r} reply_channel={loggable_name(str(self.reply_channel))}>"


class WebsocketDemultiplexer(JsonWebsocketConsumer):
    """Dispatch ``{"stream": name, "payload": {...}}`` frames to one consumer per stream.

    ``consumers`` maps stream names to consumers (classes such as a
    :class:`JsonWebsocketConsumer`, or callables such as a binding's
    ``consumer``). Every consumer is called for connect and disconnect;
    a frame goes to its stream's consumer only, with the payload as the
    frame's JSON text. Each call gets a ``multiplexer`` keyword argument (a
    :class:`WebsocketMultiplexer` for its stream); a ``JsonWebsocketConsumer``
    called this way wraps its ``send`` in the stream automatically.

    The connection is accepted after every consumer's ``connect`` returned,
    so any of them can refuse it by raising ``DenyConnection``.

    A frame without ``stream`` and ``payload``, with a stream nobody
    handles, or with a payload that is not an object gets an error frame
    ``{"error": "..."}``.

    Put ordering flags (``strict_ordering``/``slight_ordering``) on the
    demultiplexer, not on its stream consumers: they see the frame with the
    payload as its text, and a frame parked for later would come back
    without its envelope.
    """

    consumers: dict[str, Any] = {}
    multiplexer_class = WebsocketMultiplexer

    def _multiplexer(self, stream: str) -> WebsocketMultiplexer:
        return self.multiplexer_class(stream, self.message.reply_channel)

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Forward the connect to every stream's consumer, then accept."""
        for stream, consumer in self.consumers.items():
            consumer(message, **{**kwargs, "multiplexer": self._multiplexer(stream)})
        self.accept()

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Forward the disconnect to every stream's consumer."""
        for stream, consumer in self.consumers.items():
            consumer(message, **{**kwargs, "multiplexer": self._multiplexer(stream)})

    def receive(self, content: Any, **kwargs: Any) -> None:
        """Hand the payload of a stream frame to that stream's consumer."""
        if not isinstance(content, dict) or "stream" not in content or "payload" not in content:
            self.invalid_frame('expected an object with "stream" and "payload" keys', **kwargs)
            return
        stream, payload = content["stream"], content["payload"]
        consumer = self.consumers.get(stream) if isinstance(stream, str) else None
        if consumer is None:
            known = ", ".join(sorted(self.consumers)) or "none"
            self.invalid_frame(f"unknown stream {stream!r} (streams: {known})", **kwargs)
            return
        if not isinstance(payload, dict):
            self.invalid_frame(f"the payload of stream {stream!r} must be an object, not {payload!r:.80}", **kwargs)
            return
        # The stream's consumer reads the frame like any other: give it the
        # payload as the text, on the same Message (so it shares the sessions).
        original = self.message.content.get("text")
        self.message.content["text"] = self.encode_json(payload)
        try:
            consumer(self.message, **{**kwargs, "multiplexer": self._multiplexer(stream)})
        finally:
            self.message.content["text"] = original

    def send(self, content: Any, close: bool | int = False) -> None:  # type: ignore[override]
        """Send a raw JSON frame outside any stream (used for error frames)."""
        WebsocketConsumer.send(self, text=self.encode_json(content), close=close)

    @classmethod
    def group_send(cls, name: str, content: Any, close: bool | int = False) -> None:  # type: ignore[override]
        """Refuse: a demultiplexed socket only takes stream frames.

        Raises:
            TypeError: always; use ``WebsocketMultiplexer.group_send(name, stream, payload)``.
        """
        raise TypeError(
            f"{cls.__name__}.group_send() would send a frame outside any stream; "
            "use WebsocketMultiplexer.group_send(group, stream, payload)"
        )


__all__ = [
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]
