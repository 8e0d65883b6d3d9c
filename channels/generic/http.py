"""HTTP consumers: Channels 1.x's ``HttpConsumer`` and Channels 2-4's ``AsyncHttpConsumer``.

:class:`HttpConsumer` (1.x) answers ``http.request`` messages from a class,
bypassing the view layer, with an ordinary Django ``HttpResponse``::

    class Status(HttpConsumer):
        def handle(self, body, **kwargs):
            self.send_response({"ok": True})   # a dict is sent as JSON

    channel_routing = [route_class(Status, path=r"^/status/$")]

:class:`AsyncHttpConsumer` (Channels 2-4) is routed under ``"http"`` in a
``ProtocolTypeRouter``; ``handle(body)`` answers with ``send_response``, or
with ``send_headers`` and ``send_body(..., more_body=True)`` to keep the
response open for typed events -- long polling, server-sent events::

    class Events(AsyncHttpConsumer):
        async def handle(self, body):
            await self.channel_layer.group_add("news", self.channel_name)
            await self.send_headers(headers=[(b"Content-Type", b"text/event-stream")])
            await self.send_body(b"", more_body=True)

        async def news_item(self, event):
            await self.send_body(b"data: %s\\n\\n" % event["text"].encode(), more_body=True)

        async def disconnect(self):
            await self.channel_layer.group_discard("news", self.channel_name)

Each event runs on a worker as a WebSocket consumer's do (see
:mod:`channels.http_turn`): a fresh instance with the attributes the
previous handlers left, which must be msgpack-serialisable.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseBase

from ..auth import http_session_user
from ..consumer import AsyncConsumer
from ..exceptions import RequestAborted, RequestTimeout, StopConsumer
from ..handler import AsgiHandler, AsgiRequest
from ..http_turn import HttpTurn
from ..message import Message
from ..sessions import http_session
from .base import BaseConsumer

logger = logging.getLogger(__name__)


class HttpConsumer(BaseConsumer):
    """Handle ``http.request``: :meth:`handle` gets the body and answers with :meth:`send_response`.

    ``self.request`` is the :class:`~channels.handler.AsgiRequest` (headers,
    ``GET``, ``POST``, cookies...). A body that stops arriving is answered
    with 408; a client that goes away mid-body gets nothing.

    Class attributes (besides :class:`BaseConsumer`'s):
        http_session: ``message.http_session`` from the request's cookie.
        http_user: ``message.user`` as well (implies ``http_session``).
    """

    method_mapping = {"http.request": "raw_request"}
    http_session = False
    http_user = False

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """Return the raw handler, wrapped in the HTTP session/user decorators asked for."""
        handler = super().get_handler(message, **kwargs)
        if self.http_user:
            return http_session_user(handler)
        if self.http_session:
            return http_session(handler)
        return handler

    def raw_request(self, message: Message, **kwargs: Any) -> None:
        """Build ``self.request`` (reading a chunked body) and call :meth:`handle`."""
        if message.reply_channel is None:
            raise ValueError(f"{type(self).__name__} got an http.request without a reply_channel")
        try:
            self.request = AsgiRequest(message)
        except RequestTimeout:
            self.send_response(b"Request body timed out", status=408)
            return
        except RequestAborted:
            logger.info("Client went away while sending its body to %s", message.get("path"))
            return
        self.handle(self.request.body, **kwargs)

    def handle(self, body: bytes, **kwargs: Any) -> None:
        """Answer the request; the default says 405 (override it)."""
        self.send_response(b"Method not allowed", status=405)

    def send_response(self, content: Any = b"", status: int = 200, headers: dict[str, str] | None = None,
                      content_type: str | None = None) -> None:
        """Send the response and finish the request.

        Args:
            content: an ``HttpResponse`` (sent as it is), bytes or str (the
                body), or a dict/list (sent as JSON).
            status, headers, content_type: for bodies given as data.

        Raises:
            TypeError: ``content`` is none of those.
        """
        if isinstance(content, HttpResponseBase):
            response = content
        else:
            if isinstance(content, (dict, list)):
                content = json.dumps(content, cls=DjangoJSONEncoder)
                content_type = content_type or "application/json"
            elif not isinstance(content, (bytes, str)):
                raise TypeError(f"send_response takes an HttpResponse, bytes, str, dict or list, not {content!r:.80}")
            response = HttpResponse(content, status=status, content_type=content_type)
            for name, value in (headers or {}).items():
                response[name] = value
        try:
            for chunk in AsgiHandler.encode_response(response):
                self.message.reply_channel.send(chunk)
        finally:
            response.close()


class AsyncHttpConsumer(AsyncConsumer):
    """A Channels 2-4 HTTP consumer: override :meth:`handle`; add a method per typed event for open responses.

    The request's body reaches :meth:`handle` whole. The response ends
    when the last body message is sent (``more_body=False``); the consumer
    is then done and :meth:`disconnect` runs. Until then -- ``handle`` may
    return with the response open -- typed events sent to
    ``self.channel_name`` (``group_send``, ``channel_layer.send``) call
    their handlers (``news_item(self, event)`` for ``{"type":
    "news.item"}``), one at a time, and may send more of the body or end
    it. If the client goes away first, :meth:`disconnect` runs. A handler
    that raises is logged with its class, method and request, the request
    gets a 500 (or, once its head has gone out, the response is cut
    short), and :meth:`disconnect` runs on that instance.

    Unlike Channels 4's class, whose consumer stops when ``handle`` returns
    (so the long-polling example of its documentation never gets its
    event, django/channels#1747), this one stops when the response ends.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body: list[bytes] = []

    async def send_headers(self, *, status: int = 200, headers: Any = None) -> None:
        """Start the response: ``status`` and ``headers`` (a list of ``(name, value)`` bytes pairs, or a dict).

        As ASGI says, nothing reaches the client until the first :meth:`send_body`.
        """
        if headers is None:
            headers = []
        elif isinstance(headers, dict):
            headers = list(headers.items())
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send (part of) the response body; ``more_body=True`` keeps the response open for more.

        Raises:
            TypeError: ``body`` is not bytes.
        """
        if not isinstance(body, bytes):
            raise TypeError(f"send_body takes bytes, not {type(body).__name__}")
        await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def send_response(self, status: int, body: bytes, **kwargs: Any) -> None:
        """Send the whole response: :meth:`send_headers` (``headers=`` among ``kwargs``), then :meth:`send_body`."""
        await self.send_headers(status=status, **kwargs)
        await self.send_body(body)

    async def handle(self, body: bytes) -> None:
        """Answer the request, whose whole body is ``body``; override it.

        Raises:
            NotImplementedError: always (the default).
        """
        raise NotImplementedError("Subclasses of AsyncHttpConsumer must provide a handle() method.")

    async def disconnect(self) -> None:
        """Called once the consumer is done (response complete, client gone, or a handler raised): clean up here."""

    async def http_request(self, message: dict[str, Any]) -> None:
        """Gather the body and call :meth:`handle` once it is complete."""
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body"):
            await self.handle(b"".join(self.body))

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        """The client went away before the response ended: call :meth:`disconnect` and stop."""
        await self.disconnect()
        raise StopConsumer()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler for ``message``; end the consumer once the response is complete.

        Raises:
            StopConsumer: the response is complete (after :meth:`disconnect`).
            Exception: what the handler raised (after :meth:`disconnect`).
        """
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            if message.get("type") != "http.disconnect":
                await self.disconnect()  # its job is cleanup: it runs when a handler fails too
            raise
        if isinstance(self._turn, HttpTurn) and self._turn.complete:
            await self.disconnect()
            raise StopConsumer()


__all__ = ["AsyncHttpConsumer", "HttpConsumer"]
