"""``HttpCommunicator``: one HTTP request to a Channels 2-4 application, run as workers run it."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.handlers.asgi import ASGIHandler

from ..http_turn import HttpTurn
from ..turns import Message, run_turn, unpack_full_state
from .base import Communicator

__all__ = ["HttpCommunicator"]


def _outputs(reply: Message) -> list[Message]:
    """Return the ASGI messages a 1.x response message stands for (what a Channels test sees)."""
    outputs = []
    if "status" in reply:
        outputs.append({"type": "http.response.start", "status": reply["status"],
                        "headers": [tuple(pair) for pair in reply.get("headers") or ()]})
    outputs.append({"type": "http.response.body", "body": reply.get("content", b""),
                    "more_body": bool(reply.get("more_content", False))})
    return outputs


class HttpCommunicator(Communicator):
    """Drive one HTTP request of ``application`` from a test (``async`` methods).

    Args:
        application: the ASGI application (``Consumer.as_asgi()``, a
            ``ProtocolTypeRouter``, ``get_asgi_application()``...).
        method: the HTTP method.
        path: the path, with an optional query string.
        body: the request body.
        headers: ``[(name, value)]`` byte pairs.

    Each event runs as on a worker: the request, then every typed event
    sent to the consumer's ``channel_name`` through the configured layer
    while its response is open, each on a fresh instance with the state of
    the earlier ones restored from msgpack. Where the routing reaches
    Django's ASGI handler, that handler serves the request here. An
    exception a handler raises is raised again by the communicator's next
    call (the request has got its 500 meanwhile, as on a worker).
    """

    def __init__(self, application: Any, method: str, path: str, body: bytes = b"",
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if not isinstance(body, bytes):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        super().__init__(application)
        parts = urlsplit(path)
        self.body = body
        self.scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method.upper(), "scheme": "http", "path": unquote(parts.path),
            "raw_path": parts.path.encode("latin-1"), "query_string": parts.query.encode("latin-1"), "root_path": "",
            "headers": [(bytes(k), bytes(v)) for k, v in (headers or [])],
            "client": ("127.0.0.1", 0), "server": ("testserver", 80),
        }
        self._state: bytes | None = None
        self._request_parts: list[bytes] = []
        self._sent = False  # the request has gone to the application
        self._ended = False  # the consumer is done: no more events reach it
        self._turns = 0

    # -- running events ------------------------------------------------------------

    def _sink(self, message: Message) -> None:
        for reply in message.get("replies") or ():
            for output in _outputs(reply):
                self._outputs.put_nowait(output)

    async def _turn(self, event: Message) -> None:
        async with self._lock:
            if self._ended:
                return
            if self._state is None:
                scope_base, attrs, response = dict(self.scope), {}, None
            else:
                scope_base, attrs, response = unpack_full_state(self._state)
            number = self._turns
            self._turns += 1
            if number == 0 and isinstance(self.application, ASGIHandler):
                self._ended = True
                await self._run_django(self.application, event)
                return
            turn = HttpTurn(event, self.channel_name, self.layer, attrs, None, f"{self.scope['path']} (test)",
                            self._sink, response)
            await run_turn(self.application, dict(scope_base), turn)
            if turn.view is not None and number == 0 and not turn.failed:
                self._ended = True
                await self._run_django(turn.view, event)
                return
            if event["type"] == "http.disconnect":
                self._ended = True
            else:
                self._state = turn.conclude(scope_base, number)
                self._ended = self._state is None
            if turn.error is not None and self._error is None:
                self._error = turn.error

    async def _run_django(self, handler: Any, request: Message) -> None:
        """Serve the request with Django's own ASGI handler, as a worker's view path would."""
        done = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return request
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            self._outputs.put_nowait({key: value for key, value in message.items()})
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        try:
            await handler(dict(self.scope), receive, send)
        finally:
            done.set()

    async def _pump_layer(self) -> bool:
        """Run a turn for each typed event waiting on the consumer's channel; return True if there was one."""
        if self.layer is None or not self._sent or self._ended:
            return False
        found = False
        while not self._ended:
            name, message = self.layer.backend.receive([self._prefix], block=False)
            if name is None or message is None:
                break
            if "type" in message:
                found = True
                await self._turn(message)
        return found

    # -- the test's side -------------------------------------------------------------

    async def send_input(self, message: Message) -> None:
        """Send ``http.request`` (parts with ``more_body``: the request runs once the last has come) or ``http.disconnect``.

        Raises:
            ValueError: another type, or a request part after the request went.
        """
        kind = message.get("type")
        if kind == "http.request":
            if self._sent:
                raise ValueError("the request has already been sent")
            self._request_parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                self._sent = True
                await self._turn({"type": "http.request", "body": b"".join(self._request_parts), "more_body": False})
        elif kind == "http.disconnect":
            if self._sent:
                await self._turn({"type": "http.disconnect"})
            self._ended = True
        else:
            raise ValueError(f"An HTTP client sends http.request or http.disconnect, not {kind!r}")
        self._raise_error()

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Send the request (if not yet sent) and return the whole response: ``{"status", "headers", "body"}``.

        Typed events sent to the consumer meanwhile are delivered, so a
        response an event completes (a long poll) comes back too.

        Raises:
            TimeoutError: the response did not complete within ``timeout``
                for each of its messages.
            AssertionError: the application sent its messages out of order.
        """
        if not self._sent:
            await self.send_input({"type": "http.request", "body": self.body})
        start = await self.receive_output(timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"Expected http.response.start, got {start!r}")
        body = b""
        while True:
            chunk = await self.receive_output(timeout)
            if chunk["type"] != "http.response.body":
                raise AssertionError(f"Expected http.response.body, got {chunk!r}")
            body += chunk.get("body", b"")
            if not chunk.get("more_body", False):
                break
        return {"status": start["status"], "headers": list(start.get("headers") or []), "body": body}
