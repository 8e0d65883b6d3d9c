"""Django's view layer behind ``http.request`` messages.

* :class:`AsgiRequest` -- a real :class:`~django.http.HttpRequest` built
  from an ``http.request`` message, reading the rest of a large body from
  its ``body_channel``.
* :class:`AsgiHandler` -- runs Django's middleware, URLconf and views and
  turns the response into response messages (:meth:`AsgiHandler.encode_response`).
* :class:`ViewConsumer` -- the default ``http.request`` consumer.
"""

from __future__ import annotations

import codecs
import logging
import time
from io import BytesIO
from typing import Any, Iterator

from django import http
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestDataTooBig
from django.core.handlers import base
from django.urls import set_script_prefix
from django.utils.functional import cached_property
from django.utils.http import parse_header_parameters

from asgi_backends.base import loggable_name
from asgi_backends.retry import policy_for, send_retrying
from worker.fetch import send_with_fetch

from .exceptions import RequestAborted, RequestTimeout, ResponseLater

logger = logging.getLogger("django.request")


def read_body_channel(layer: Any, body_channel: str, first: bytes, timeout: float, limit: int | None = None) -> bytes:
    """Return a request body: ``first`` and the chunks read from ``body_channel`` until the last.

    Raises:
        RequestTimeout: no chunk came for ``timeout`` seconds.
        RequestAborted: the client closed the connection mid-body.
        RequestDataTooBig: the body passed ``limit`` bytes.
    """
    parts = [first]
    size = len(first)
    deadline = time.monotonic() + timeout
    while True:
        chunk = None
        while chunk is None:
            if time.monotonic() >= deadline:
                raise RequestTimeout(f"No body chunk on {body_channel} for {timeout}s")
            _, chunk = layer.receive([body_channel], block=True)
        if chunk.get("closed"):
            raise RequestAborted(f"Client closed the connection while sending the body on {body_channel}")
        piece = chunk.get("content", b"") or b""
        parts.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            raise RequestDataTooBig(f"Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE ({limit} bytes)")
        if not chunk.get("more_content"):
            return b"".join(parts)
        deadline = time.monotonic() + timeout


class AsgiRequest(http.HttpRequest):
    """A Django request decoded from an ``http.request`` message.

    Raises (from the constructor):
        RequestTimeout: body chunks stopped arriving for ``body_receive_timeout`` s.
        RequestAborted: the client closed the connection mid-body.
        RequestDataTooBig: a non-file body exceeded ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
    """

    ResponseLater = ResponseLater

    #: seconds to wait for the next body chunk before giving up (HTTP 408)
    body_receive_timeout = 60

    def __init__(self, message: Any) -> None:
        self.message = message
        self.reply_channel = message.reply_channel
        self._post_parse_error = False
        self._read_started = False
        self.resolver_match = None
        content = message.content
        self.path = content["path"]
        self.script_name = content.get("root_path") or ""
        if self.script_name and self.path.startswith(self.script_name):
            self.path_info = self.path[len(self.script_name):] or "/"
        else:
            self.path_info = self.path
        self.method = content.get("method", "GET").upper()
        query_string = content.get("query_string", b"")
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        self._query_string = query_string
        self.META = meta = {
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": query_string,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": self.path_info,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
        }
        client = content.get("client")
        if client:
            meta["REMOTE_ADDR"] = meta["REMOTE_HOST"] = client[0]
            meta["REMOTE_PORT"] = client[1]
        server = content.get("server")
        if server:
            meta["SERVER_NAME"], meta["SERVER_PORT"] = server[0], str(server[1])
        else:
            meta["SERVER_NAME"], meta["SERVER_PORT"] = "unknown", "0"
        for name, value in content.get("headers", ()):
            name = name.decode("latin-1") if isinstance(name, bytes) else name
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            if name == "content-length":
                key = "CONTENT_LENGTH"
            elif name == "content-type":
                key = "CONTENT_TYPE"
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            meta[key] = f"{meta[key]},{value}" if key in meta else value
        self.content_type, self.content_params = parse_header_parameters(meta.get("CONTENT_TYPE", ""))
        charset = self.content_params.get("charset")
        if charset:
            try:
                codecs.lookup(charset)
            except LookupError:
                pass
            else:
                self.encoding = charset
        body = content.get("body", b"") or b""
        if not isinstance(body, bytes):
            raise TypeError(f"http.request body must be bytes, not {type(body).__name__}")
        if content.get("body_channel"):
            body = self._read_body_channel(content["body_channel"], body)
        if not meta.get("CONTENT_LENGTH"):
            meta["CONTENT_LENGTH"] = str(len(body))
        self._content_length = len(body)
        self._stream = BytesIO(body)

    def _read_body_channel(self, body_channel: str, first: bytes) -> bytes:
        """Collect the body chunks; enforce the timeout and the upload limit."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if self.content_type == "multipart/form-data":
            limit = None  # file uploads are bounded by the upload handlers instead
        return read_body_channel(self.message.channel_layer, body_channel, first, self.body_receive_timeout, limit)

    @cached_property
    def GET(self) -> http.QueryDict:  # noqa: N802 (Django's name)
        return http.QueryDict(self._query_string, encoding=self._encoding)

    def _get_scheme(self) -> str:
        return self.message.content.get("scheme") or "http"

    def _get_post(self) -> http.QueryDict:
        if not hasattr(self, "_post"):
            self._read_started = False
            self._load_post_and_files()
        return self._post

    def _set_post(self, post: http.QueryDict) -> None:
        self._post = post

    def _get_files(self) -> Any:
        if not hasattr(self, "_files"):
            self._read_started = False
            self._load_post_and_files()
        return self._files

    POST = property(_get_post, _set_post)
    FILES = property(_get_files)

    @cached_property
    def COOKIES(self) -> dict[str, str]:  # noqa: N802 (Django's name)
        return http.parse_cookie(self.META.get("HTTP_COOKIE", ""))


class _ResponseLater(http.HttpResponse):
    """Marker response: the view promised that something else answers."""


class AsgiHandler(base.BaseHandler):
    """Runs Django's request path for ``http.request`` messages.

    Calling the handler with a message returns an iterator of response
    messages (``{status, headers, content, more_content}`` then chunks).
    """

    request_class = AsgiRequest
    #: bytes per response message; well under the layers' 1 MB limit
    chunk_size = 512 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()

    def __call__(self, message: Any) -> Iterator[dict]:
        set_script_prefix(message.content.get("root_path") or "")
        signals.request_started.send(sender=type(self), message=message)
        try:
            request = self.request_class(message)
        except UnicodeDecodeError:
            logger.warning("Bad Request (UnicodeDecodeError)", exc_info=True, extra={"status_code": 400})
            response = http.HttpResponseBadRequest()
        except RequestTimeout:
            response = http.HttpResponse("408 Request Timeout (upload too slow)", status=408)
        except RequestAborted:
            signals.request_finished.send(sender=type(self))
            return
        except RequestDataTooBig:
            response = http.HttpResponse("413 Payload Too Large", status=413)
        else:
            response = self.get_response(request)
            if isinstance(response, _ResponseLater):
                response.close()
                return
            if isinstance(response, http.FileResponse):
                response.block_size = self.chunk_size
        try:
            yield from self.encode_response(response)
        finally:
            response.close()  # sends request_finished: DB connections are tidied

    def _get_response(self, request: http.HttpRequest) -> http.HttpResponseBase:
        try:
            return super()._get_response(request)
        except ResponseLater:
            return _ResponseLater()

    @classmethod
    def encode_response(cls, response: http.HttpResponseBase) -> Iterator[dict]:
        """Turn a Django response into response messages.

        Yields the first message (status, headers and the first chunk of
        content), then further ``{content, more_content}`` chunks; streaming
        responses end with an empty chunk whose ``more_content`` is False.
        """
        headers = [
            [header.encode("ascii") if isinstance(header, str) else header,
             value.encode("latin-1") if isinstance(value, str) else value]
            for header, value in response.items()
        ]
        for cookie in response.cookies.values():
            headers.append([b"Set-Cookie", cookie.output(header="").strip().encode("ascii")])
        message: dict[str, Any] = {"status": response.status_code, "headers": headers}
        if response.streaming:
            for part in response:
                for chunk, _ in cls.chunk_bytes(part):
                    if not chunk:
                        continue
                    message["content"] = chunk
                    message["more_content"] = True
                    yield message
                    message = {}
            message["content"] = b""
            message["more_content"] = False
            yield message
            return
        for chunk, last in cls.chunk_bytes(response.content):
            message["content"] = chunk
            message["more_content"] = not last
            yield message
            message = {}

    @classmethod
    def chunk_bytes(cls, data: bytes) -> Iterator[tuple[bytes, bool]]:
        """Yield ``(chunk, is_last)`` pieces of at most ``chunk_size`` bytes."""
        if isinstance(data, str):
            data = data.encode(settings.DEFAULT_CHARSET)
        if not data:
            yield b"", True
            return
        size = cls.chunk_size
        for position in range(0, len(data), size):
            yield data[position:position + size], position + size >= len(data)


class ViewConsumer:
    """The default ``http.request`` consumer: Django's URLconf, middleware and views.

    Response messages are sent at once (not held), so a streaming response
    reaches the client as it is produced; the last one carries the worker's
    next receive (:mod:`worker.fetch`). A full reply channel is retried for
    up to ``send_timeout`` seconds, then the response is abandoned.
    """

    handler_class = AsgiHandler
    send_timeout = 30.0
    #: request_started/request_finished already close stale DB connections
    manages_db_connections = True

    def __init__(self) -> None:
        self.handler = self.handler_class()

    def __call__(self, message: Any, **kwargs: Any) -> None:
        reply = message.reply_channel
        if reply is None:
            raise ValueError("http.request message has no reply_channel")
        layer = reply.channel_layer
        policy = policy_for(self.send_timeout)
        for reply_message in self.handler(message):
            # The response's last message carries the worker's next receive.
            if not reply_message.get("more_content") and send_with_fetch(layer, reply.name, reply_message):
                continue
            try:  # the client reads slowly: give it up to send_timeout for each message
                send_retrying(layer, reply.name, reply_message, policy)
            except layer.ChannelFull:
                logger.warning("Reply channel %s stayed full; abandoning the response", loggable_name(reply.name))
                return


__all__ = ["AsgiHandler", "AsgiRequest", "ViewConsumer", "read_body_channel"]
