"""Channels 2-4 WebSocket consumers (the singular module; ``channels.generic.websockets`` is the 1.x one).

:class:`WebsocketConsumer` and :class:`JsonWebsocketConsumer` are
synchronous, :class:`AsyncWebsocketConsumer` and
:class:`AsyncJsonWebsocketConsumer` their ``async`` twins. Override
``connect()``, ``receive(text_data=None, bytes_data=None)`` and
``disconnect(close_code)``; add a method per typed event
(``chat_message(self, event)`` for ``{"type": "chat.message"}``). Each event
runs on a fresh instance, in whichever worker received it, with the
attributes the previous handlers left (see :mod:`channels.consumer`).

Frames a handler sends reach the client when the handler returns, in one
message with the connection's new state.
"""

from __future__ import annotations

import json
from typing import Any

from ..consumer import AsyncConsumer, SyncConsumer
from ..exceptions import AcceptConnection, DenyConnection, StopConsumer

__all__ = ["AsyncJsonWebsocketConsumer", "AsyncWebsocketConsumer", "JsonWebsocketConsumer", "WebsocketConsumer"]


def _close_message(code: int | bool | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "websocket.close"}
    if code is not None and code is not True:
        message["code"] = code
    return message


class WebsocketConsumer(SyncConsumer):
    """A synchronous WebSocket consumer.

    Class attributes:
        groups: group names the connection joins on connect and leaves on disconnect.
    """

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.groups is None:
            self.groups = []

    def websocket_connect(self, message: dict[str, Any]) -> None:
        """Join :attr:`groups`, then call :meth:`connect` (``AcceptConnection``/``DenyConnection`` answer it)."""
        backend = getattr(self.channel_layer, "backend", None)
        if backend is not None:
            for group in self.groups or ():
                backend.group_add(group, self.channel_name)
        try:
            self.connect()
        except AcceptConnection:
            self.accept()
        except DenyConnection:
            self.close()

    def connect(self) -> None:
        """Called when the client opens the socket; the default accepts it."""
        self.accept()

    def accept(self, subprotocol: str | None = None, headers: list[Any] | None = None) -> None:
        """Accept the connection, optionally choosing one of ``scope["subprotocols"]``."""
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = list(headers)
        self.send_message(message)

    def websocket_receive(self, message: dict[str, Any]) -> None:
        """Call :meth:`receive` with the frame's ``text_data`` or ``bytes_data``."""
        if message.get("text") is not None:
            self.receive(text_data=message["text"])
        else:
            self.receive(bytes_data=message["bytes"])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each frame from the client; the default does nothing."""

    def send(self, text_data: str | None = None, bytes_data: bytes | None = None,  # type: ignore[override]
             close: bool | int = False) -> None:
        """Send a text or binary frame, and/or close (``close`` True or a code).

        Raises:
            ValueError: neither ``text_data`` nor ``bytes_data`` is given (and no close).
        """
        if text_data is not None:
            self.send_message({"type": "websocket.send", "text": text_data})
        elif bytes_data is not None:
            self.send_message({"type": "websocket.send", "bytes": bytes_data})
        elif not close:
            raise ValueError("You must pass one of bytes_data or text_data")
        if close:
            self.close(close)

    def send_message(self, message: dict[str, Any]) -> None:
        """Send a raw ASGI message (what :meth:`SyncConsumer.send` does)."""
        SyncConsumer.send(self, message)

    def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the connection (before :meth:`accept`, refuse the handshake)."""
        self.send_message(_close_message(code))

    def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave :attr:`groups`, call :meth:`disconnect` with the close code, and end the instance."""
        backend = getattr(self.channel_layer, "backend", None)
        if backend is not None:
            for group in self.groups or ():
                backend.group_discard(group, self.channel_name)
        self.disconnect(message.get("code"))
        raise StopConsumer()

    def disconnect(self, code: int | None) -> None:
        """Called when the socket has closed (for any reason); the default does nothing."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """A :class:`WebsocketConsumer` that speaks JSON text frames: ``receive_json`` and ``send_json``."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Decode a text frame and call :meth:`receive_json`.

        Raises:
            ValueError: a binary frame arrived.
        """
        if text_data is None:
            raise ValueError("No text section for incoming WebSocket frame!")
        self.receive_json(self.decode_json(text_data), **kwargs)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message; the default does nothing."""

    def send_json(self, content: Any, close: bool | int = False) -> None:
        """Send ``content`` encoded as JSON in a text frame."""
        self.send(text_data=self.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        """Return the object ``text_data`` encodes (override for another decoder)."""
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Return ``content`` as JSON text (override for another encoder)."""
        return json.dumps(content)


class AsyncWebsocketConsumer(AsyncConsumer):
    """An asynchronous WebSocket consumer (``async def connect`` ... ``await self.send(...)``)."""

    groups: list[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.groups is None:
            self.groups = []

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Join :attr:`groups`, then await :meth:`connect`."""
        if self.channel_layer is not None:
            for group in self.groups or ():
                await self.channel_layer.group_add(group, self.channel_name)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()

    async def connect(self) -> None:
        """Called when the client opens the socket; the default accepts it."""
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: list[Any] | None = None) -> None:
        """Accept the connection, optionally choosing a subprotocol."""
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = list(headers)
        await self.base_send(message)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Await :meth:`receive` with the frame's ``text_data`` or ``bytes_data``."""
        if message.get("text") is not None:
            await self.receive(text_data=message["text"])
        else:
            await self.receive(bytes_data=message["bytes"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each frame from the client; the default does nothing."""

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None,  # type: ignore[override]
                   close: bool | int = False) -> None:
        """Send a text or binary frame, and/or close.

        Raises:
            ValueError: neither ``text_data`` nor ``bytes_data`` is given (and no close).
        """
        if text_data is not None:
            await self.base_send({"type": "websocket.send", "text": text_data})
        elif bytes_data is not None:
            await self.base_send({"type": "websocket.send", "bytes": bytes_data})
        elif not close:
            raise ValueError("You must pass one of bytes_data or text_data")
        if close:
            await self.close(close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the connection (before :meth:`accept`, refuse the handshake)."""
        await self.base_send(_close_message(code))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave :attr:`groups`, await :meth:`disconnect`, and end the instance."""
        if self.channel_layer is not None:
            for group in self.groups or ():
                await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message.get("code"))
        raise StopConsumer()

    async def disconnect(self, code: int | None) -> None:
        """Called when the socket has closed; the default does nothing."""


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """An :class:`AsyncWebsocketConsumer` that speaks JSON: ``receive_json`` and ``send_json``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Decode a text frame and await :meth:`receive_json`.

        Raises:
            ValueError: a binary frame arrived.
        """
        if text_data is None:
            raise ValueError("No text section for incoming WebSocket frame!")
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message; the default does nothing."""

    async def send_json(self, content: Any, close: bool | int = False) -> None:
        """Send ``content`` encoded as JSON in a text frame."""
        await self.send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """Return the object ``text_data`` encodes."""
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        """Return ``content`` as JSON text."""
        return json.dumps(content)
