"""``WebsocketCommunicator``: one WebSocket connection to a Channels 2-4 application, run as workers run it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from ..turns import Turn, event_from_message, pack_kept_state, pack_state, run_turn, scope_from_connect, unpack_state
from .base import Communicator

__all__ = ["WebsocketCommunicator"]


def _output(reply: dict[str, Any]) -> dict[str, Any]:
    """Return the ASGI message a 1.x reply stands for (what a Channels test sees)."""
    if reply.get("accept"):
        return {"type": "websocket.accept", "subprotocol": reply.get("subprotocol")}
    if "text" in reply:
        return {"type": "websocket.send", "text": reply["text"]}
    if "bytes" in reply:
        return {"type": "websocket.send", "bytes": reply["bytes"]}
    close = reply.get("close")
    return {"type": "websocket.close", "code": 1000 if close is True else close}


class WebsocketCommunicator(Communicator):
    """Drive one WebSocket connection of ``application`` from a test (``async`` methods).

    Args:
        application: the ASGI application (``Consumer.as_asgi()``, a router...).
        path: the connection's path, with an optional query string.
        headers: ``[(name, value)]`` byte pairs.
        subprotocols: subprotocols the client offers.

    Each event runs as on a worker: a new instance, the state of the
    previous events restored from msgpack (what cannot be packed is
    missing, as it would be in production). An exception a handler raises
    is raised again by the communicator's next call.
    """

    def __init__(self, application: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None,
                 subprotocols: list[str] | None = None, spec_version: str | None = None) -> None:
        super().__init__(application)
        parts = urlsplit(path)
        header_list = [[bytes(k), bytes(v)] for k, v in (headers or [])]
        if subprotocols:
            header_list.append([b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")])
        self.scope_base = scope_from_connect({
            "path": unquote(parts.path), "query_string": parts.query.encode("latin-1"), "headers": header_list,
            "client": ["127.0.0.1", 0], "server": ["testserver", 80],
        })
        self.scope = self.scope_base
        self._state = pack_state(self.scope_base, {})
        self._closed = False

    async def _turn(self, channel: str, content: dict[str, Any]) -> None:
        async with self._lock:
            scope_base, attrs = unpack_state(self._state)
            event = event_from_message(channel, content)
            turn = Turn(event, self.channel_name, self.layer, attrs, description=f"{self.scope_base['path']} (test)")
            await run_turn(self.application, dict(scope_base or self.scope_base), turn)
            if not turn.failed:
                owner = type(turn.consumer).__qualname__ if turn.consumer is not None else "consumer"
                self._state = pack_kept_state(owner, self.scope_base, turn.attrs)
            if turn.error is not None and self._error is None:
                self._error = turn.error
            for reply in turn.replies:
                self._outputs.put_nowait(_output(reply))

    speaker = "the consumer"

    def _took(self, output: dict[str, Any]) -> None:
        if output["type"] == "websocket.close":
            self._closed = True

    async def _pump_layer(self) -> bool:
        """Run a turn for each event waiting on the connection's channel; return True if there was one."""
        if self.layer is None or self._closed:
            return False
        backend = self.layer.backend
        found = False
        while True:
            name, message = backend.receive([self._prefix], block=False)
            if name is None or message is None:
                return found
            found = True
            if "type" in message:
                await self._turn("websocket.event", {"event": message})
            else:
                self._outputs.put_nowait(_output(message))

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        """Open the connection; return ``(True, subprotocol)`` if accepted, ``(False, close code)`` if refused.

        Raises:
            TimeoutError: the consumer neither accepted nor refused within ``timeout``.
        """
        await self._turn("websocket.connect", {})
        output = await self.receive_output(timeout)
        if output["type"] == "websocket.accept":
            return True, output.get("subprotocol")
        if output["type"] == "websocket.close":
            self._closed = True
            return False, output.get("code", 1000)
        raise AssertionError(f"Expected websocket.accept or websocket.close, got {output!r}")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send a text or binary frame to the consumer.

        Raises:
            ValueError: neither or both of ``text_data`` and ``bytes_data``.
        """
        if (text_data is None) == (bytes_data is None):
            raise ValueError("send_to needs exactly one of text_data and bytes_data")
        if text_data is not None and not isinstance(text_data, str):
            raise TypeError(f"text_data must be str, not {type(text_data).__name__}")
        if bytes_data is not None and not isinstance(bytes_data, bytes):
            raise TypeError(f"bytes_data must be bytes, not {type(bytes_data).__name__}")
        content = {"text": text_data} if text_data is not None else {"bytes": bytes_data}
        await self._turn("websocket.receive", content)
        self._raise_error()

    async def send_json_to(self, data: Any) -> None:
        """Send ``data`` as a JSON text frame."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """Return the next frame's text or bytes.

        Raises:
            AssertionError: the consumer sent something else (a close).
            TimeoutError: nothing within ``timeout``.
        """
        output = await self.receive_output(timeout)
        if output["type"] != "websocket.send":
            raise AssertionError(f"Expected type 'websocket.send', but was {output['type']!r} ({output!r})")
        return output["text"] if output.get("text") is not None else output["bytes"]

    async def receive_json_from(self, timeout: float = 1) -> Any:
        """Return the next frame, decoded from JSON.

        Raises:
            AssertionError: the frame is binary.
        """
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(f"JSON frame must be text, got {payload!r}")
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        """Close the connection: the consumer's ``disconnect(code)`` runs."""
        if self._closed and self._state is None:
            return
        self._closed = True
        await self._turn("websocket.disconnect", {"code": code})
        self._raise_error()
