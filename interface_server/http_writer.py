"""Writing one connection's responses to its client, bounded by what the client reads.

:class:`ResponseWriter` turns response messages into bytes on the
transport -- the head (:func:`~interface_server.http_response.build_head`),
then the body, with chunked framing when the length is not known -- and
counts, through the connection's
:class:`~interface_server.flow.OutboundBuffer`, what is written while the
client is not reading: past ``max_pending_bytes`` it refuses to write more
(:class:`ClientNotReading`), so one slow reader cannot make the server
hold a whole streamed response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .http_response import ResponseError, build_head

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

    from .flow import OutboundBuffer
    from .http_parse import RequestHead

__all__ = ["ClientNotReading", "ResponseWriter"]


class ClientNotReading(Exception):
    """The client holds more unread bytes than ``max_pending_bytes``: its response must be aborted."""


class ResponseWriter:
    """Writes the response to the current request of one connection.

    Args:
        transport: the connection's transport.
        outbound: the buffer registered as the transport's producer.
        server_name: the ``Server`` header value when the application sets none.

    Attributes:
        status: the status of the response being written, 0 before its head.
        bytes_sent: body bytes written so far.
        keep_alive: the connection may serve another request after this one.
    """

    __slots__ = ("transport", "outbound", "server_name", "status", "bytes_sent", "keep_alive", "chunked", "body")

    def __init__(self, transport: ITransport, outbound: OutboundBuffer, server_name: bytes) -> None:
        self.transport = transport
        self.outbound = outbound
        self.server_name = server_name
        self.reset()

    def reset(self) -> None:
        """Get ready for the next request's response."""
        self.status = 0
        self.bytes_sent = 0
        self.keep_alive = True
        self.chunked = False
        self.body = True

    def start(self, message: dict[str, Any], request: RequestHead, keep_alive: bool) -> bool:
        """Write the head (and first content) of the response to ``request``.

        Returns:
            True if the response is complete.

        Raises:
            ResponseError: the message is not a valid response (nothing was written).
            ClientNotReading: the client holds too much unread.
        """
        response = build_head(message, request.http_version, request.method == "HEAD", keep_alive, self.server_name)
        self.status = message["status"]
        self.keep_alive = response.keep_alive
        self.chunked = response.chunked
        self.body = response.body_allowed
        content = message.get("content", b"")
        more = message.get("more_content", False)
        if not more and not response.chunked and type(content) is bytes:
            # The whole response in one message (the usual case): one write.
            if content and response.body_allowed:
                self.bytes_sent = len(content)
                self._write(response.data, content)
            else:
                self._write(response.data)
            return True
        self._write(response.data)
        return self.chunk(content, more)

    def chunk(self, content: Any, more: bool) -> bool:
        """Write the next part of the body (``more``: others follow).

        Returns:
            True if the response is complete.

        Raises:
            ResponseError: ``content`` is not bytes.
            ClientNotReading: the client holds too much unread.
        """
        if not isinstance(content, bytes):
            raise ResponseError(f"response content must be bytes, not {type(content).__name__}")
        if content and self.body:
            self.bytes_sent += len(content)
            if self.chunked:
                self._write(b"%x\r\n" % len(content), content, b"\r\n")
            else:
                self._write(content)
        if more:
            return False
        if self.chunked and self.body:
            self._write(b"0\r\n\r\n")
        return True

    def _write(self, *parts: bytes) -> None:
        outbound = self.outbound
        if outbound.paused and outbound.add(sum(map(len, parts))):
            raise ClientNotReading(f"more than {outbound.limit} bytes unread")
        if len(parts) == 1:
            outbound.write(parts[0])
        else:
            outbound.write_sequence(parts)
