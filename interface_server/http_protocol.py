"""The HTTP/1.1 side of the server: one protocol instance per TCP connection.

A connection serves one request at a time: it parses a head, sends the
``http.request`` message (streaming a large body on a ``?`` body channel),
relays the response from the request's reply channel, then goes on with
the next pipelined request, so responses always leave in request order.
WebSocket upgrades are handed over to :mod:`interface_server.ws_protocol`.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces, protocol

from .http_parse import ChunkedDecoder, HTTPError, RequestHead, parse_head
from .http_response import ResponseError, build_head, error_response

if TYPE_CHECKING:
    from .server import ServerContext

logger = logging.getLogger(__name__)


class HTTPState(enum.Enum):
    """Where a connection is in its request/response cycle."""

    HEAD = "reading a request head"
    BODY = "reading a request body"
    WAITING = "waiting for the application's response"
    RESPONDING = "writing a streamed response"
    UPGRADED = "handed over to WebSocket"
    CLOSED = "closed"


class HTTPProtocol(protocol.Protocol):
    """Speaks HTTP/1.x on one connection, relaying requests to the channel layer."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.state = HTTPState.HEAD
        self.buffer = bytearray()
        self.request: RequestHead | None = None
        self.reply_channel: str | None = None
        self.body_channel: str | None = None
        self.client: list[Any] | None = None
        self.server: list[Any] | None = None
        self.scheme = "http"
        self.keep_alive = True
        self.paused = False
        self.last_activity = 0.0
        self.sent_at = 0.0
        # Request body bookkeeping.
        self.body = bytearray()
        self.body_remaining = 0
        self.body_received = 0
        self.dechunker: ChunkedDecoder | None = None
        self.body_dispatched = False
        self.body_queue: list[dict[str, Any]] = []
        self.body_retry: Any = None
        # Response bookkeeping.
        self.response_chunked = False
        self.response_body = True
        self.status = 0
        self.bytes_sent = 0

    # -- connection events --------------------------------------------------

    def connectionMade(self) -> None:
        ctx = self.ctx
        ctx.http_connections.add(self)
        self.number = next(ctx.connection_numbers)
        self.client, self.server = ctx.addresses(self.transport)
        if interfaces.ISSLTransport.providedBy(self.transport):
            self.scheme = "https"
        self.last_activity = ctx.now()
        if ctx.shutting_down:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self.last_activity = self.ctx.now()
        state = self.state
        if state is HTTPState.HEAD or state is HTTPState.BODY:
            self.process()
        elif len(self.buffer) > self.ctx.config.max_header_size and not self.paused:
            # Pipelined requests pile up while one is served: stop reading for now.
            self.transport.pauseProducing()
            self.paused = True

    def connectionLost(self, reason: Any = None) -> None:
        state = self.state
        self.state = HTTPState.CLOSED
        self.ctx.http_connections.discard(self)
        if self.body_retry is not None and self.body_retry.active():
            self.body_retry.cancel()
        if state in (HTTPState.BODY, HTTPState.WAITING, HTTPState.RESPONDING) and self.reply_channel:
            if self.body_channel and state is HTTPState.BODY and self.body_dispatched:
                self._send_quietly(self.body_channel, {"content": b"", "closed": True, "more_content": False})
            self._send_quietly("http.disconnect", {"reply_channel": self.reply_channel, "path": self.request.path})
            self.ctx.receiver.forget(self.reply_channel)
            self.reply_channel = None

    def _send_quietly(self, channel: str, message: dict[str, Any]) -> None:
        # After the request on the same sender thread, so the application sees them in order.
        self.ctx.sender.send(self.number, channel, message)

    # -- parsing ------------------------------------------------------------

    def process(self) -> None:
        """Consume as much of the buffer as the current state allows."""
        try:
            while True:
                if self.state is HTTPState.HEAD:
                    if not self._read_head():
                        return
                elif self.state is HTTPState.BODY:
                    self._read_body()
                    return
                else:
                    return
        except HTTPError as exc:
            self.fail(exc.status, exc.reason)

    def _read_head(self) -> bool:
        buffer = self.buffer
        # Tolerate blank lines between requests (some clients send them).
        while buffer[:2] == b"\r\n":
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n")
        limit = self.ctx.config.max_header_size
        if end < 0:
            if len(buffer) > limit:
                raise HTTPError(431, "Request header fields too large")
            return False
        if end > limit:
            raise HTTPError(431, "Request header fields too large")
        head = parse_head(bytes(buffer[:end]))
        self.request = head
        if head.websocket and head.method == "GET":
            self._upgrade()
            return False
        del buffer[: end + 4]
        self._start_request(head)
        return True

    def _start_request(self, head: RequestHead) -> None:
        config = self.ctx.config
        self.keep_alive = head.keep_alive and not self.ctx.shutting_down
        self.body.clear()
        self.body_dispatched = False
        self.body_channel = None
        self.body_received = 0
        self.dechunker = None
        if head.chunked:
            self.dechunker = ChunkedDecoder()
            self.body_remaining = -1
        else:
            self.body_remaining = head.content_length or 0
            if self.body_remaining > config.max_body_size:
                raise HTTPError(413, f"Request body larger than {config.max_body_size} bytes")
        if head.expect_continue and self.body_remaining:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.state = HTTPState.BODY

    def _read_body(self) -> None:
        buffer = self.buffer
        if self.dechunker is not None:
            data = self.dechunker.feed(buffer)
            finished = self.dechunker.done
        else:
            take = min(self.body_remaining, len(buffer))
            data = bytes(buffer[:take])
            del buffer[:take]
            self.body_remaining -= take
            finished = not self.body_remaining
        if data:
            self.body_received += len(data)
            if self.body_received > self.ctx.config.max_body_size:
                raise HTTPError(413, f"Request body larger than {self.ctx.config.max_body_size} bytes")
            self.body += data
        limit = self.ctx.config.body_inline_limit
        if not self.body_dispatched:
            if finished and len(self.body) <= limit:
                body = bytes(self.body)
                self.body.clear()
                self.state = HTTPState.WAITING
                self._dispatch(body, None)
                return
            if len(self.body) <= limit:
                return
            first = bytes(self.body[:limit])
            del self.body[:limit]
            if not self._dispatch(first, self.ctx.layer.new_channel("http.request.body?")):
                return
        # Streaming: whole chunks while the body lasts, then the rest with more_content false.
        while len(self.body) >= limit:
            chunk = bytes(self.body[:limit])
            del self.body[:limit]
            self._queue_body(chunk, False)
        if finished:
            chunk = bytes(self.body)
            self.body.clear()
            self._queue_body(chunk, True)
            if self.state is HTTPState.BODY:
                self.state = HTTPState.RESPONDING if self.status else HTTPState.WAITING

    def _dispatch(self, body: bytes, body_channel: str | None) -> bool:
        """Send the ``http.request`` message; False if it failed (connection answered)."""
        head = self.request
        ctx = self.ctx
        self.reply_channel = ctx.receiver.new_channel(self)
        client, scheme = self.client, self.scheme
        if ctx.config.proxy_headers:
            client, scheme = ctx.proxied(head, client, scheme)
        message = {
            "reply_channel": self.reply_channel,
            "http_version": head.http_version,
            "method": head.method,
            "scheme": scheme,
            "path": head.path,
            "query_string": head.query_string,
            "root_path": ctx.config.root_path,
            "headers": head.headers,
            "body": body,
            "client": client,
            "server": self.server,
        }
        if body_channel is not None:
            message["body_channel"] = body_channel
            self.body_channel = body_channel
        self.body_dispatched = True
        self.sent_at = ctx.now()
        reply_channel = self.reply_channel
        ctx.sender.send(self.number, "http.request", message, lambda exc: self._dispatch_failed(reply_channel, exc))
        if ctx.verbose:
            logger.info("HTTP %s %s from %s sent on %s", head.method, head.path, client, self.reply_channel)
        # With inline sends (sender_threads=0) a failure has already answered and closed.
        return self.state is not HTTPState.CLOSED

    def _dispatch_failed(self, reply_channel: str, exc: BaseException) -> None:
        """The ``http.request`` could not be sent: answer this client (if it is still that request's)."""
        if self.reply_channel != reply_channel or self.state is HTTPState.CLOSED:
            return
        head = self.request
        self.body_dispatched = False  # the application never saw it: no http.disconnect either
        layer = self.ctx.layer
        if isinstance(exc, layer.ChannelFull):
            logger.warning("http.request channel full; answering 503 to %s for %s", self.client, head.path)
            self.fail(503, "Server is at capacity, try again later")
        elif isinstance(exc, layer.MessageTooLarge):
            self.fail(413, "Request too large for the channel layer")
        else:
            logger.error("Could not send http.request for %s %s from %s: %s", head.method, head.path, self.client, exc)
            self.fail(503, "Channel layer unavailable, try again later")

    # -- streaming the body on its channel ------------------------------------

    def _queue_body(self, content: bytes, last: bool) -> None:
        self.body_queue.append({"content": content, "closed": False, "more_content": not last})
        if self.body_retry is None or not self.body_retry.active():
            self._flush_body()

    def _flush_body(self) -> None:
        queue = self.body_queue
        layer = self.ctx.layer
        while queue and self.state is not HTTPState.CLOSED:
            try:
                layer.send(self.body_channel, queue[0])
            except layer.ChannelFull:
                # The application reads the body slower than it arrives: stop reading the socket.
                if not self.paused:
                    self.transport.pauseProducing()
                    self.paused = True
                self.body_retry = self.ctx.reactor.callLater(0.02, self._flush_body)
                return
            except Exception as exc:
                logger.error("Could not send request body chunk for %s from %s: %s", self.request.path, self.client, exc)
                self.fail(503, "Channel layer unavailable, try again later")
                return
            del queue[0]
        if self.paused and self.state is HTTPState.BODY:
            self.transport.resumeProducing()
            self.paused = False

    # -- the response ---------------------------------------------------------

    def handle_reply(self, message: dict[str, Any]) -> None:
        """Write one response message from the reply channel to the client."""
        state = self.state
        try:
            if state is HTTPState.WAITING or (state is HTTPState.BODY and self.status == 0):
                self._write_head(message)
            elif state is HTTPState.RESPONDING or state is HTTPState.BODY:
                self._write_chunk(message.get("content", b""), message.get("more_content", False))
            else:
                logger.debug("Dropping reply for %s in state %s", self.client, state.name)
        except ResponseError as exc:
            logger.error("Bad response for %s %s from %s: %s", self.request.method, self.request.path, self.client, exc)
            if self.status == 0:
                self.status = 500
                self.transport.write(error_response(500, "The application sent an invalid response"))
            self._close()

    def _write_head(self, message: dict[str, Any]) -> None:
        head = self.request
        response = build_head(message, head.http_version, head.method == "HEAD", self.keep_alive, self.ctx.server_name)
        self.status = message["status"]
        self.keep_alive = response.keep_alive
        self.response_chunked = response.chunked
        self.response_body = response.body_allowed
        if self.state is HTTPState.WAITING:
            self.state = HTTPState.RESPONDING
        self.transport.write(response.data)
        self._write_chunk(message.get("content", b""), message.get("more_content", False))

    def _write_chunk(self, content: Any, more: bool) -> None:
        if not isinstance(content, bytes):
            raise ResponseError(f"response content must be bytes, not {type(content).__name__}")
        if content and self.response_body:
            self.bytes_sent += len(content)
            if self.response_chunked:
                self.transport.writeSequence((b"%x\r\n" % len(content), content, b"\r\n"))
            else:
                self.transport.write(content)
        if not more:
            if self.response_chunked and self.response_body:
                self.transport.write(b"0\r\n\r\n")
            self._finish_response()

    def _finish_response(self) -> None:
        ctx = self.ctx
        head = self.request
        if ctx.access_log is not None:
            ctx.access_log.http(self.client, head.method, head.target, head.http_version, self.status, self.bytes_sent)
        ctx.receiver.forget(self.reply_channel)
        self.reply_channel = None
        self.status = 0
        self.bytes_sent = 0
        if self.state is HTTPState.BODY or not self.keep_alive or ctx.shutting_down:
            # A response sent before the body was read leaves the stream unparseable.
            self._close()
            return
        self.state = HTTPState.HEAD
        self.last_activity = ctx.now()
        if self.paused:
            self.transport.resumeProducing()
            self.paused = False
        if self.buffer:
            self.process()

    # -- errors, timeouts, closing ---------------------------------------------

    def fail(self, status: int, reason: str) -> None:
        """Answer ``status`` (if no response started yet) and close this connection."""
        head = self.request
        path = head.path if head is not None else "-"
        logger.info("HTTP %d for %s %s: %s", status, self.client, path, reason)
        if self.state is HTTPState.CLOSED:
            return
        if self.status == 0:
            self.status = status
            self.transport.write(error_response(status, reason, head is not None and head.method == "HEAD"))
            if self.ctx.access_log is not None and head is not None:
                self.ctx.access_log.http(self.client, head.method, head.target, head.http_version, status, 0)
        if self.reply_channel:
            if self.status == status and self.body_dispatched:
                # The application has the request but will never answer this client now.
                if self.body_channel and self.state is HTTPState.BODY:
                    self._send_quietly(self.body_channel, {"content": b"", "closed": True, "more_content": False})
                self._send_quietly("http.disconnect", {"reply_channel": self.reply_channel, "path": path})
            self.ctx.receiver.forget(self.reply_channel)
            self.reply_channel = None
        self._close()

    def _close(self) -> None:
        self.state = HTTPState.CLOSED
        self.ctx.http_connections.discard(self)
        self.transport.loseConnection()

    def check_timeouts(self, now: float) -> None:
        """Enforce the response timeout and the keep-alive idle timeout."""
        state = self.state
        config = self.ctx.config
        if state is HTTPState.WAITING:
            if config.http_timeout is not None and now - self.sent_at > config.http_timeout:
                self.fail(503, "The application did not respond in time")
        elif state is HTTPState.HEAD and now - self.last_activity > config.keepalive_timeout:
            self._close()

    def begin_shutdown(self) -> None:
        """Close now if idle; otherwise close once the response in flight is complete."""
        self.keep_alive = False
        if self.state is HTTPState.HEAD:
            self._close()

    # -- WebSocket upgrade -----------------------------------------------------

    def _upgrade(self) -> None:
        """Hand the connection, and every byte read so far (head included), to a WebSocket protocol."""
        self.state = HTTPState.UPGRADED
        self.ctx.http_connections.discard(self)
        data = bytes(self.buffer)
        self.buffer.clear()
        ws = self.ctx.build_websocket(self.request, self.client, self.server, self.scheme)
        transport = self.transport
        transport.protocol = ws
        ws.makeConnection(transport)
        ws.dataReceived(data)


class HTTPFactory(protocol.Factory):
    """Builds an :class:`HTTPProtocol` for each accepted connection."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> HTTPProtocol:
        proto = HTTPProtocol(self.ctx)
        proto.factory = self
        return proto
