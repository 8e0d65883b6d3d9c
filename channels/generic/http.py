"""``HttpConsumer``: answer ``http.request`` messages from a class, bypassing the view layer.

Useful for long-poll endpoints and other handlers that want the raw request
message but still answer with an ordinary Django ``HttpResponse``::

    class Status(HttpConsumer):
        def handle(self, body, **kwargs):
            self.send_response({"ok": True})   # a dict is sent as JSON

    channel_routing = [route_class(Status, path=r"^/status/$")]
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseBase

from ..auth import http_session_user
from ..exceptions import RequestAborted, RequestTimeout
from ..handler import AsgiHandler, AsgiRequest
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


__all__ = ["HttpConsumer"]
