"""``HttpCommunicator``: one HTTP request through an ASGI application, in the test's event loop."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["HttpCommunicator"]


class HttpCommunicator:
    """Send one request to an ASGI application (``get_asgi_application()`` or a ``ProtocolTypeRouter``).

    Args:
        application: the ASGI application.
        method: the HTTP method.
        path: the path, with an optional query string.
        body: the request body.
        headers: ``[(name, value)]`` byte pairs.
    """

    def __init__(self, application: Any, method: str, path: str, body: bytes = b"",
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        parts = urlsplit(path)
        self.application = application
        self.body = body
        self.scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
            "scheme": "http", "path": unquote(parts.path), "raw_path": parts.path.encode("latin-1"),
            "query_string": parts.query.encode("latin-1"), "root_path": "",
            "headers": [(bytes(k), bytes(v)) for k, v in (headers or [])],
            "client": ("127.0.0.1", 0), "server": ("testserver", 80),
        }

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Run the request; return ``{"status", "headers", "body"}``.

        Raises:
            TimeoutError: the application did not finish within ``timeout``.
        """
        sent_body = False
        done = asyncio.Event()
        response: dict[str, Any] = {"status": None, "headers": [], "body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    done.set()

        task = asyncio.ensure_future(self.application(dict(self.scope), receive, send))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            done.set()
            try:
                await asyncio.wait_for(task, timeout)
            except asyncio.TimeoutError:
                task.cancel()
        if response["status"] is None:
            raise TimeoutError("the application sent no response")
        return response
