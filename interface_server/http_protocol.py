"""The HTTP/1.1 side of the server: one protocol instance per TCP connection.

A connection serves one request at a time: its :class:`RequestReader`
parses the bytes (llhttp), the request goes out as an ``http.request``
message (a large body streamed on a ``?`` body channel), and the response
is relayed from the request's reply channel; then the next pipelined
request, so responses always leave in request order. WebSocket upgrades
are handed over to :mod:`interface_server.ws_protocol`. A request a
Channels 2-4 consumer serves on workers (``AsyncHttpConsumer``) gets its
typed events and its disconnect forwarded one at a time, with its state,
by a :class:`~interface_server.http_turns.RequestTurns`.

Hostile clients: every refusal of the reader is answered with its status
and the connection closed; timeouts are timers on the reactor's clock (one
deadline for a request head, an idle timeout for a body, the response
timeout, keep-alive); what the application sends a client that does not
read is bounded by ``max_pending_bytes`` (the response is aborted past it),
and reading pauses while more than that of a request body is still on its
way to the layer (:class:`~interface_server.http_body.BodyStream`) or
while a request is being answered (pipelining).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces, protocol

from asgi_backends.base import loggable_name
from asgi_backends.exceptions import LayerUnavailable

from .deadline import Deadline
from .flow import OutboundBuffer
from .http_body import LAYER, PIPELINING, BodyStream, ReadGate
from .http_parse import ParsedRequest, RequestHead
from .http_reader import RequestReader
from .http_response import ResponseError, error_response
from .http_turns import RequestTurns, consumer_message
from .http_writer import ClientNotReading, ResponseWriter

if TYPE_CHECKING:
    from .context import ServerContext

logger = logging.getLogger(__name__)

__all__ = ["HTTPFactory", "HTTPProtocol", "HTTPState"]


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
        self.clock = ctx.reactor
        config = ctx.config
        self.state = HTTPState.HEAD
        self.reader = RequestReader(config.max_header_size, config.max_body_size)
        self.current: ParsedRequest | None = None
        self.request: RequestHead | None = None
        self.reply_channel: str | None = None
        self.body_channel: str | None = None
        self.client: list[Any] | None = None
        self.server: list[Any] | None = None
        self.scheme = "http"
        self.keep_alive = True
        self.served = 0
        # Every timeout of the connection, one at a time, on one timer.
        self.deadline = Deadline(self.clock, self._expired)
        self.accepted_at = 0.0
        self.head_started: float | None = None
        self.body_progress = 0.0
        # Request body bookkeeping.
        self.body = bytearray()
        self.body_dispatched = False
        self.body_stream: BodyStream | None = None
        self.outbound = OutboundBuffer(config.max_pending_bytes, self.clock, config.send_timeout, self._stalled)
        self.writer: ResponseWriter | None = None
        self.gate: ReadGate | None = None
        # Made when a request's answer (or a typed event for it) shows a Channels 2-4 consumer may serve it.
        self.turns: RequestTurns | None = None

    # -- connection events --------------------------------------------------

    def connectionMade(self) -> None:
        ctx = self.ctx
        ctx.http_connections.add(self)
        self.number = next(ctx.connection_numbers)
        self.client, self.server = ctx.addresses(self.transport)
        if interfaces.ISSLTransport.providedBy(self.transport):
            self.scheme = "https"
        # The transport pauses the buffer's counting when its send buffer fills (a client not reading).
        self.outbound.attach(self.transport)
        self.writer = ResponseWriter(self.transport, self.outbound, ctx.server_name)
        self.gate = ReadGate(self.transport)
        self.accepted_at = self.clock.seconds()
        if ctx.shutting_down:
            self._close()
            return
        # The first request's head is due a head timeout after the accept, bytes or not.
        self.deadline.set(self.accepted_at + ctx.config.request_head_timeout)

    def dataReceived(self, data: bytes) -> None:
        state = self.state
        if state is HTTPState.CLOSED or state is HTTPState.UPGRADED:
            return
        self.reader.feed(data)
        if state is HTTPState.HEAD:
            self._advance()
        elif state is HTTPState.BODY:
            self.body_progress = self.clock.seconds()
            self._advance()
        else:
            # A pipelined request behind the one being answered: read no further until then.
            self.gate.pause(PIPELINING)

    def connectionLost(self, reason: Any = None) -> None:
        state = self.state
        self._closed()
        if state in (HTTPState.BODY, HTTPState.WAITING, HTTPState.RESPONDING) and self.reply_channel:
            self._tell_application_gone(state)

    def _tell_application_gone(self, state: HTTPState) -> None:
        """The application has this request but will never finish answering it: say so."""
        if self.body_dispatched:
            if self.body_channel and state is HTTPState.BODY:
                # After the chunks already handed to the sender (the rest are dropped), retried if full.
                self.ctx.sender.send(self.number, self.body_channel,
                                     {"content": b"", "closed": True, "more_content": False}, retry_full=True)
            self._application_gone()
            return
        self.ctx.receiver.forget(self.reply_channel)
        self.reply_channel = None

    def _application_gone(self) -> None:
        """Tell the application its client will not see the rest of the response; stop routing its replies here.

        A consumer's request (serial) gets its ``http.disconnect`` after the
        turn at a worker, with its state; any other a plain one at once --
        and if turn 0 may still be a consumer's, the stateful one follows
        should its answer come.
        """
        reply_channel = self.reply_channel
        self.reply_channel = None
        turns = self.turns
        if turns is None or not turns.serial:
            self._send_quietly("http.disconnect", {"reply_channel": reply_channel, "path": self.request.path})
            if turns is None and not self.writer.status:
                turns = self.turns = RequestTurns(self, reply_channel, self.request.path)
        if turns is not None and not turns.finished:
            turns.gone()  # keeps the reply channel routed until the disconnect has gone
        else:
            self.ctx.receiver.forget(reply_channel)

    def _send_quietly(self, channel: str, message: dict[str, Any]) -> None:
        # After the request on the same sender thread, so the application sees them in order.
        self.ctx.sender.send(self.number, channel, message)

    # -- reading requests ---------------------------------------------------------

    def _advance(self) -> None:
        """Act on what the reader has read, as far as the current state allows."""
        reader = self.reader
        while True:
            state = self.state
            if state is HTTPState.HEAD:
                if not reader.requests:
                    if reader.in_head and self.head_started is None:
                        # One deadline for the whole head, from its first byte (from the accept for the first).
                        self.head_started = now = self.clock.seconds()
                        start = self.accepted_at if not self.served else now
                        self.deadline.set(start + self.ctx.config.request_head_timeout)
                    return
                if not self._start(reader.requests[0]):
                    return
            elif state is HTTPState.BODY:
                current = self.current
                if current.error is not None:
                    self.fail(current.error.status, current.error.reason)
                    return
                if current.body:
                    self._body_data(current.take_body())
                    if self.state is not HTTPState.BODY:
                        return
                if not current.complete:
                    self.deadline.set(self.body_progress + self.ctx.config.request_body_timeout)
                    return
                self._body_complete()
            else:
                return

    def _start(self, current: ParsedRequest) -> bool:
        """Begin serving the oldest request read; False if the connection was answered or handed over."""
        ctx = self.ctx
        self.current = current
        self.request = head = current.head
        self.head_started = None
        if current.error is not None:
            # Refused before the application saw it: a malformed head, or a body already known bad.
            self.fail(current.error.status, current.error.reason)
            return False
        if head.websocket:
            self._upgrade()
            return False
        reader = self.reader
        self.keep_alive = head.keep_alive and not ctx.shutting_down and not (
            reader.truncated and len(reader.requests) == 1)
        self.body.clear()
        self.body_dispatched = False
        self.body_channel = None
        self.body_stream = None
        self.state = HTTPState.BODY
        self.body_progress = self.clock.seconds()
        if head.expect_continue and not current.complete:
            self.outbound.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _body_data(self, data: bytes) -> None:
        """Take more of the current request's body: dispatch, or stream it on the body channel."""
        body = self.body
        body += data
        limit = self.ctx.config.body_inline_limit
        if not self.body_dispatched:
            if len(body) <= limit:
                return
            first = bytes(body[:limit])
            del body[:limit]
            channel = self.ctx.layer.new_channel("http.request.body?")
            if not self._dispatch(first, channel):
                return
            self.body_stream = BodyStream(self.ctx, self.number, channel, lambda: self.gate.pause(LAYER),
                                          lambda: self.gate.resume(LAYER), self._body_progressed, self._body_failed)
        # Streaming: whole chunks while the body lasts, the rest (more_content false) at its end.
        stream = self.body_stream
        while len(body) >= limit:
            chunk = bytes(body[:limit])
            del body[:limit]
            stream.push(chunk, False)

    def _body_complete(self) -> None:
        """The whole body has been read: send the request, or the last body chunk."""
        config = self.ctx.config
        body = bytes(self.body)
        self.body.clear()
        if not self.body_dispatched:
            self.state = HTTPState.WAITING
            if not self._dispatch(body, None):
                return
        else:
            self.body_stream.push(body, True)
            if self.state is not HTTPState.BODY:
                return
            self.state = HTTPState.RESPONDING if self.writer.status else HTTPState.WAITING
        if self.state is HTTPState.WAITING and config.http_timeout is not None:
            # The body has just arrived: body_progress is the time of its last bytes.
            self.deadline.set(self.body_progress + config.http_timeout)
        else:
            self.deadline.clear()

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
        reply_channel = self.reply_channel
        ctx.sender.send(self.number, "http.request", message, lambda exc: self._dispatch_failed(reply_channel, exc))
        if ctx.verbose:
            logger.info("HTTP %s %s from %s sent on %s", head.method, head.path, client, loggable_name(reply_channel))
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
            self.ctx.warnings.warn(logger, "http.request channel full; answering 503 to %s for %s", self.client,
                                   head.path)
            self.fail(503, "Server is at capacity, try again later")
        elif isinstance(exc, layer.MessageTooLarge):
            self.fail(413, "Request too large for the channel layer")
        else:
            if not isinstance(exc, LayerUnavailable):  # an outage is logged once, by the sender
                logger.error("Could not send http.request for %s %s from %s: %s", head.method, head.path,
                             self.client, exc)
            self.fail(503, "Channel layer unavailable, try again later")

    def _body_failed(self, exc: BaseException) -> None:
        """A body chunk could not be sent (the layer failed; a full channel is retried, not failed)."""
        if self.state is HTTPState.CLOSED:
            return
        head = self.request
        if not isinstance(exc, LayerUnavailable):  # an outage is logged once, by the sender
            logger.error("Could not send a body chunk of %s %s from %s: %s", head.method, head.path, self.client, exc)
        self.fail(503, "Channel layer unavailable, try again later")

    def _body_progressed(self) -> None:
        # A chunk reached the layer: the body is moving, even while reading is paused for it.
        if self.state is HTTPState.BODY:
            self.body_progress = self.clock.seconds()
            self.deadline.set(self.body_progress + self.ctx.config.request_body_timeout)

    # -- the response -----------------------------------------------------------

    def handle_reply(self, message: dict[str, Any]) -> None:
        """Act on one message from the reply channel: a response message, or a consumer's answer or typed event."""
        if "replies" in message or "type" in message:
            consumer_message(self, message)
            return
        turns = self.turns
        if turns is not None:
            self.turns = None
            turns.plain_response(self.state is HTTPState.CLOSED)
            if self.state is HTTPState.CLOSED:
                return
        self.write_reply(message)

    @property
    def responding(self) -> bool:
        """True while the current request's response is due or being written."""
        return self.reply_channel is not None and self.state in (HTTPState.WAITING, HTTPState.RESPONDING)

    def give_up(self, status: int, reason: str) -> None:
        """End the current response: answer ``status`` if nothing was written, else cut it short."""
        if self.writer.status:
            self._abort()
        else:
            self.fail(status, reason)

    def write_reply(self, message: dict[str, Any]) -> None:
        """Write one response message to the client."""
        state = self.state
        writer = self.writer
        try:
            if state is HTTPState.WAITING or (state is HTTPState.BODY and not writer.status):
                if state is HTTPState.WAITING:
                    self.state = HTTPState.RESPONDING
                    self.deadline.clear()
                done = writer.start(message, self.request, self.keep_alive)
                self.keep_alive = writer.keep_alive
            elif state is HTTPState.RESPONDING or state is HTTPState.BODY:
                if "status" in message:
                    # A second response head: the application failed part-way (its 500 follows a 200).
                    logger.warning("The application started a new response (%r) in the middle of the %d to "
                                   "%s %s from %s; aborting the connection", message.get("status"), writer.status,
                                   self.request.method, self.request.path, self.client)
                    self._abort()
                    return
                done = writer.chunk(message.get("content", b""), message.get("more_content", False))
            else:
                logger.debug("Dropping reply for %s in state %s", self.client, state.name)
                return
        except ResponseError as exc:
            logger.error("Bad response for %s %s from %s: %s", self.request.method, self.request.path, self.client, exc)
            if not writer.status:
                writer.status = 500
                self.outbound.write(error_response(500, "The application sent an invalid response"))
                self._log_access(500, 0)
                self._close()
            else:
                self._abort()  # the head is out: only a cut-short response tells the client
            return
        except ClientNotReading as exc:
            head = self.request
            logger.warning("Aborting the response to %s %s from %s: the client is not reading it (%s)",
                           head.method, head.path, self.client, exc)
            self._application_gone()
            self._abort()
            return
        if done:
            self._finish_response()

    def _finish_response(self) -> None:
        ctx = self.ctx
        writer = self.writer
        if ctx.access_log is not None:
            self._log_access(writer.status, writer.bytes_sent)
        writer.reset()
        ctx.receiver.forget(self.reply_channel)
        self.reply_channel = None
        turns = self.turns
        if turns is not None:
            self.turns = None
            turns.finish()  # the response is complete: its consumer is done, nothing more goes to a worker
        self.served += 1
        if self.body_stream is not None:
            self.body_stream.close()  # answered: the application wants no more of the body
            self.body_stream = None
        if self.state is HTTPState.BODY or not self.keep_alive or ctx.shutting_down:
            # A response sent before the body was read leaves the stream unparseable.
            self._close()
            return
        self.reader.pop()
        self.current = self.request = None
        self.state = HTTPState.HEAD
        reader = self.reader
        if not reader.requests and reader.truncated:
            self._close()  # pipelined requests past the budget were left unread: the client retries them
            return
        self.deadline.set(self.clock.seconds() + ctx.config.keepalive_timeout)
        if self.gate.reasons:
            self.gate.resume(PIPELINING)
        if reader.requests or reader.in_head:
            self._advance()  # a pipelined request, or part of one, arrived meanwhile

    def _log_access(self, status: int, length: int) -> None:
        head = self.request
        if self.ctx.access_log is not None and head is not None:
            self.ctx.access_log.http(self.client, head.method, head.target, head.http_version, status, length)

    # -- errors, timeouts, closing ---------------------------------------------

    def fail(self, status: int, reason: str) -> None:
        """Answer ``status`` (if no response started yet) and close this connection."""
        head = self.request
        state = self.state
        logger.info("HTTP %d for %s %s: %s", status, self.client, head.path if head is not None else "-", reason)
        if state is HTTPState.CLOSED:
            return
        if not self.writer.status:
            self.writer.status = status
            self.outbound.write(error_response(status, reason, head is not None and head.method == "HEAD"))
            self._log_access(status, 0)
        if self.reply_channel:
            self._tell_application_gone(state)
        self._close()

    def _closed(self) -> None:
        """Forget this connection: no more timers, reading or writing."""
        self.state = HTTPState.CLOSED
        self.ctx.http_connections.discard(self)
        self.deadline.cancel()
        if self.body_stream is not None:
            self.body_stream.close()

    def _close(self) -> None:
        self._closed()
        self.outbound.close()

    def _abort(self) -> None:
        """Close at once, discarding what is unsent: the client sees the response cut short."""
        if self.reply_channel:
            turns = self.turns
            if turns is not None and turns.serial:
                self._application_gone()  # a consumer's disconnect() still runs (unless it is done already)
            else:
                self.ctx.receiver.forget(self.reply_channel)
                self.reply_channel = None
        self._closed()
        self.outbound.abort()

    def _stalled(self) -> None:
        """The client has read nothing of what waits for it for ``send_timeout``: abort the connection."""
        head = self.request
        logger.info("Aborting the connection from %s: it has read nothing for %gs (send_timeout)%s", self.client,
                    self.ctx.config.send_timeout, f" during the response to {head.method} {head.path}" if head else "")
        if self.reply_channel:  # the application is still answering: tell it the client has gone
            self._application_gone()
        self._abort()

    def _expired(self) -> None:
        """The current timeout has passed: act as the state says."""
        state = self.state
        config = self.ctx.config
        if state is HTTPState.HEAD:
            if self.reader.in_head:
                logger.info("Request head from %s not complete after %gs", self.client, config.request_head_timeout)
                self.fail(408, "Request head not received in time")
            else:
                self._close()  # nothing sent (or an idle keep-alive connection): nothing to answer
        elif state is HTTPState.BODY:
            if self.gate.reasons & LAYER:
                self.fail(503, "The application did not read the request body in time")
            else:
                self.fail(408, "Request body not received in time")
        elif state is HTTPState.WAITING:
            self.fail(503, "The application did not respond in time")

    def begin_shutdown(self) -> None:
        """Close now if idle; otherwise close once the response in flight is complete."""
        self.keep_alive = False
        if self.state is HTTPState.HEAD and not self.reader.in_head:
            self._close()

    # -- WebSocket upgrade -----------------------------------------------------

    def _upgrade(self) -> None:
        """Hand the connection to a WebSocket protocol: the head (as read) and every byte after it."""
        head = self.request
        self._closed()
        self.state = HTTPState.UPGRADED
        data = head.encode() + (self.reader.upgrade or b"")
        transport = self.transport
        self.outbound.detach()
        if self.gate.reasons:
            self.gate.reasons = 0
            transport.resumeProducing()
        ws = self.ctx.build_websocket(head, self.client, self.server, self.scheme)
        transport.protocol = ws
        ws.makeConnection(transport)
        ws.outbound.inherit(self.outbound)  # what the transport still holds of this protocol goes first
        ws.dataReceived(data)


class HTTPFactory(protocol.Factory):
    """Builds an :class:`HTTPProtocol` for each accepted connection."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> HTTPProtocol:
        proto = HTTPProtocol(self.ctx)
        proto.factory = self
        return proto
