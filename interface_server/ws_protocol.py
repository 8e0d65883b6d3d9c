"""The WebSocket side of the server, on Autobahn's Twisted server protocol.

The HTTP protocol hands a connection over when it sees an upgrade request.
The opening handshake is held (``onConnect`` returns a Deferred) until the
application answers ``websocket.connect`` on the reply channel: accept,
reject, or a first frame (which accepts).

Timeouts follow Daphne 1.x: ``websocket_connect_timeout`` bounds how long
the handshake waits for the application, ``websocket_timeout`` is the
longest a socket may live at all (traffic does not extend it), and idle or
dead peers are found by pinging (``ping_interval``/``ping_timeout``).

Hostile clients (RFC 6455) are dealt with at the frame level by the base
class, :class:`~interface_server.ws_framing.FramingProtocol`: size limits
(1009 at the frame header), protocol errors (1002/1007, the close frame
written before the connection closes), clients that do not read (1008 past
``max_pending_bytes``). Here: the limits' defaults, reading paused while a
socket's messages wait for the layer
(:class:`~interface_server.flow.InboundFlow`), and a bounded closing
handshake (``websocket_close_timeout``).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred

from asgi_backends.base import loggable_name
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import Backoff, RetryPolicy

from .flow import InboundFlow
from .turns import ConnectionTurns, is_typed_event
from .ws_framing import FramingProtocol, instance_slots
from .ws_limits import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN_LATER,
    is_sendable_close_code,
    receive_payload_limit,
)

if TYPE_CHECKING:
    from .context import ServerContext
    from .http_parse import RequestHead

logger = logging.getLogger(__name__)

__all__ = ["PRE_OPEN_BUFFER", "WSState", "WebSocketProtocol", "build_ws_factory",
           "is_sendable_close_code"]


CONNECT_RETRY_WINDOW = 5.0
"""Seconds a ``websocket.connect`` refused as full is retried when there is no connect timeout."""

PRE_OPEN_BUFFER = 64 * 1024
"""Bytes a client may send while its handshake is held before reading from it pauses until it opens."""


class WSState(enum.Enum):
    """Where a WebSocket is in its lifecycle."""

    CONNECTING = "handshake held for the application"
    ACCEPTING = "accepted, handshake response going out"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class WebSocketProtocol(FramingProtocol):
    """One WebSocket connection, relaying frames to and from the channel layer."""

    # Slots, as for Autobahn's attributes (see ws_framing): an idle connection's memory is mostly these.
    __slots__ = instance_slots(FramingProtocol, (
        "ctx", "number", "head", "path", "client", "server", "scheme", "ws_state", "reply_channel", "order", "pending",
        "handshake", "subprotocol", "connect_deadline", "connected_at", "last_activity", "close_code",
        "ping_sent_at", "closing_since", "aborted", "read_paused_before_open", "inbound", "connect_message",
        "connect_backoff", "connect_retry", "offered_protocols", "turns"))

    ctx: ServerContext
    inbound: InboundFlow  # built in connectionMade, once there is a transport

    def setup(self, ctx: ServerContext, head: RequestHead, client: Any, server: Any, scheme: str) -> None:
        """Attach server state and what the HTTP side parsed (called before ``makeConnection``)."""
        self.ctx = ctx
        self.number = next(ctx.connection_numbers)
        # The request head is let go once websocket.connect is built from it: an idle
        # connection keeps only its path (for its messages and log lines).
        self.head: RequestHead | None = head
        self.path = head.path
        self.client = client
        self.server = server
        self.scheme = "wss" if scheme == "https" else "ws"
        self.ws_state = WSState.CONNECTING
        self.reply_channel: str | None = None
        self.order = 0
        self.pending: list[dict[str, Any]] = []
        self.handshake: Deferred | None = None
        self.subprotocol: str | None = None
        self.offered_protocols: tuple[str, ...] = ()
        # Set once websocket.connect is sent; serial only if a Channels 2-4 consumer answers (see .turns).
        self.turns: ConnectionTurns | None = None
        self.connect_deadline: float | None = None
        # Kept while the handshake is held, to send again if websocket.connect was full.
        self.connect_message: dict[str, Any] | None = None
        self.connect_backoff: Backoff | None = None
        self.connect_retry: Any = None  # the pending resend (a DelayedCall) while websocket.connect is refused
        # The lifetime (websocket_timeout) counts from here, the upgrade request, as Daphne's does.
        self.connected_at = self.last_activity = ctx.now()
        self.close_code: int | None = None
        self.ping_sent_at: float | None = None
        # When the connection started closing (ours or the peer's close frame, or a failure).
        self.closing_since: float | None = None
        self.aborted = False
        self.read_paused_before_open = False
        self.init_framing(ctx.config.max_pending_bytes, ctx.reactor, ctx.config.send_timeout)

    def connectionMade(self) -> None:
        super().connectionMade()
        config = self.ctx.config
        self.inbound = InboundFlow(self.transport, self.ctx.reactor, config.websocket_max_in_flight,
                                   config.max_pending_bytes)

    # -- handshake ------------------------------------------------------------

    def onConnect(self, request: Any) -> Deferred:
        ctx = self.ctx
        head = self.head
        ctx.ws_connections.add(self)
        client, scheme = self.client, self.scheme
        if ctx.config.proxy_headers:
            client, proxied_scheme = ctx.proxied(head, client, "https" if scheme == "wss" else "http")
            scheme = "wss" if proxied_scheme == "https" else "ws"
            self.client = client
        offered = ctx.config.ws_protocols
        self.subprotocol = next((p for p in request.protocols if p in offered), None)
        self.offered_protocols = tuple(request.protocols)
        if ctx.shutting_down:
            raise ConnectionDeny(503, "Server shutting down")
        self.reply_channel = ctx.receiver.new_channel(self)
        self._set_size_limits()
        message = {
            "reply_channel": self.reply_channel,
            "scheme": scheme,
            "path": head.path,
            "query_string": head.query_string,
            "root_path": ctx.config.root_path,
            "headers": head.headers,
            "client": client,
            "server": self.server,
            "order": 0,
        }
        self.head = None
        self.connect_message = message
        # Created before sending: with inline sends a failure arrives before send() returns.
        handshake = self.handshake = Deferred()
        self.turns = ConnectionTurns(self)
        connect_timeout = ctx.config.websocket_connect_timeout
        self.connect_deadline = None if connect_timeout is None else ctx.now() + connect_timeout
        if ctx.access_log is not None:
            ctx.access_log.websocket("WSCONNECTING", client, self.path)
        if ctx.verbose:
            logger.info("WebSocket %s from %s connecting on %s", head.path, client, loggable_name(self.reply_channel))
        ctx.sender.send(self.number, "websocket.connect", message, self._connect_failed)
        return handshake

    def _set_size_limits(self) -> None:
        """Give Autobahn this connection's message and frame limits (it refuses larger ones with 1009).

        Autobahn checks both at each frame's header, before reading its
        payload, so nothing over a limit is ever buffered.
        """
        config = self.ctx.config
        message_limit = config.websocket_max_message_size
        if message_limit is None:
            message_limit = receive_payload_limit(self.ctx.layer, self.reply_channel, self.path)
        self.set_payload_limits(message_limit, config.websocket_max_frame_size or message_limit)

    def _connect_failed(self, exc: BaseException) -> None:
        """``websocket.connect`` could not be sent: try again if it was full, else refuse the handshake (503)."""
        if self.ws_state is not WSState.CONNECTING or self.handshake is None:
            return
        full = isinstance(exc, self.ctx.layer.ChannelFull)
        if full and self._retry_connect():
            return
        if not full and not isinstance(exc, LayerUnavailable):  # an outage is logged once, by the sender
            logger.error("Could not send websocket.connect for %s from %s: %s", self.path, self.client, exc)
        self.ctx.receiver.forget(self.reply_channel)
        self.reply_channel = None  # the application never heard of it: no disconnect either
        self._deny(503, "Server is at capacity" if full else "Channel layer unavailable")

    def _retry_connect(self) -> bool:
        """Send ``websocket.connect`` again after a pause; False once the handshake may wait no longer.

        A burst of handshakes (every client of a restarted server coming
        back at once) fills the channel for moments: the handshake is held
        and retried, with backoff and jitter, until the connect timeout
        rather than refused at the first refusal. The reactor is not held
        up meanwhile, nor is any other connection.
        """
        backoff = self.connect_backoff
        if backoff is None:
            ctx = self.ctx
            deadline = self.connect_deadline
            window = CONNECT_RETRY_WINDOW if deadline is None else deadline - ctx.now()
            if window <= 0:
                return False
            policy = RetryPolicy(timeout=window, first_delay=0.02, max_delay=0.25, jitter=0.5)
            backoff = self.connect_backoff = policy.backoff(clock=ctx.now)
        pause = backoff.next_pause()
        if pause is None:
            return False
        self.connect_retry = self.ctx.reactor.callLater(pause, self._resend_connect)
        return True

    def _resend_connect(self) -> None:
        self.connect_retry = None
        message = self.connect_message
        if self.ws_state is WSState.CONNECTING and self.handshake is not None and message is not None:
            self.ctx.sender.send(self.number, "websocket.connect", message, self._connect_failed)

    def _deny(self, code: int, reason: str) -> None:
        self.connect_message = None
        handshake, self.handshake = self.handshake, None
        self._begin_closing()
        if self.ctx.access_log is not None:
            self.ctx.access_log.websocket("WSREJECT", self.client, self.path)
        if handshake is not None:
            handshake.errback(ConnectionDeny(code, reason))

    def _accept(self) -> None:
        self.connect_message = None
        handshake, self.handshake = self.handshake, None
        self.ws_state = WSState.ACCEPTING
        if handshake is not None:
            handshake.callback((self.subprotocol, {}))

    def onOpen(self) -> None:
        self.ws_state = WSState.OPEN
        if self.read_paused_before_open:
            self.read_paused_before_open = False
            self.transport.resumeProducing()
        if self.ctx.access_log is not None:
            self.ctx.access_log.websocket("WSCONNECT", self.client, self.path)
        pending, self.pending = self.pending, []
        for message in pending:
            if self.ws_state is not WSState.OPEN:
                break
            self._apply(message)

    # -- replies from the application ---------------------------------------------

    def handle_reply(self, message: dict[str, Any]) -> None:
        """Act on one message from the reply channel.

        A Channels 2-4 consumer's answer (``replies``) and typed events
        (``type``) go to the connection's :class:`~.turns.ConnectionTurns`.
        """
        turns = self.turns
        if turns is not None:
            if "replies" in message:
                turns.answer(message, self._handle_frame_reply)
                return
            if is_typed_event(message):
                if turns.serial or self.ws_state is WSState.CONNECTING:
                    turns.event(message)
                else:
                    logger.debug("Dropping a typed event for %s: no Channels 2-4 consumer serves it", self.describe())
                return
            if turns.closed:
                turns.abandon()  # a 1.x consumer answered a handshake its client had given up
        self._handle_frame_reply(message)

    def _handle_frame_reply(self, message: dict[str, Any]) -> None:
        """Act on one 1.x reply: accept, reject, a frame, a close."""
        state = self.ws_state
        if state is WSState.OPEN:
            self._apply(message)
        elif state is WSState.CONNECTING:
            accept = message.get("accept")
            frame = "text" in message or "bytes" in message
            if accept is False or (message.get("close") and accept is not True and not frame):
                self._deny(403, "Access denied")
            elif accept or frame:
                chosen = message.get("subprotocol")
                if isinstance(chosen, str) and chosen in self.offered_protocols:
                    self.subprotocol = chosen
                self.pending.append(message)
                self._accept()
        elif state is WSState.ACCEPTING:
            self.pending.append(message)
        # CLOSING/CLOSED: the client will not see it; dropping is the contract.

    def _apply(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is not None:
            if isinstance(text, str):
                self._send_frame(0x1, text)
            else:
                logger.error("websocket reply 'text' must be str, not %s (client %s, path %s)",
                             type(text).__name__, self.client, self.path)
        data = message.get("bytes")
        if data is not None:
            if isinstance(data, bytes):
                self._send_frame(0x2, data)
            else:
                logger.error("websocket reply 'bytes' must be bytes, not %s (client %s, path %s)",
                             type(data).__name__, self.client, self.path)
        close = message.get("close")
        if close and self.ws_state is WSState.OPEN:
            code = CLOSE_NORMAL if close is True else close
            if not is_sendable_close_code(code):
                self._bad_close_code(close)
                code = CLOSE_NORMAL
            self.close_with(code)

    def _send_frame(self, opcode: int, data: str | bytes) -> None:
        """Send one unfragmented data frame (a ``str`` as UTF-8), unless the connection is past open.

        Built once for every socket given the same payload object
        (:class:`~.ws_framing.SharedFrames`) and written by ``sendData``,
        rather than ``sendMessage``, which would hold the application to the
        *client's* message limit.
        """
        if self.state == self.STATE_OPEN and self.ws_state is WSState.OPEN:
            for part in self.ctx.frames.parts(opcode, data):
                self.sendData(part)

    def _bad_close_code(self, close: object) -> None:
        """Log, once per distinct value and server, that ``close`` cannot go in a close frame."""
        key = repr(close)
        warned = self.ctx.warned_close_codes
        if key in warned:
            logger.debug("Invalid websocket close code %s again; closing %s with 1000", key, self.client)
            return
        warned.add(key)
        logger.warning(
            "Invalid websocket close code %s sent by the application for %s: RFC 6455 allows True or an int in "
            "1000-1003, 1007-1014 or 3000-4999; closing with 1000 instead (repeats of this code are not logged)",
            key, self.path,
        )

    # -- frames from the client ------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.discarding:
            return  # failed: RFC 6455 section 7.1.7 says to read nothing more
        # Any traffic, pongs included, shows the peer is alive: it answers an
        # outstanding ping and postpones the next one.
        self.last_activity = self.ctx.now()
        self.ping_sent_at = None
        if self.ws_state is not WSState.OPEN and not self.read_paused_before_open \
                and len(self.data) + len(data) > PRE_OPEN_BUFFER:
            # Frames sent ahead of a held handshake wait in self.data: stop reading until it opens.
            self.read_paused_before_open = True
            self.transport.pauseProducing()
        self._dataReceived(data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.order += 1
        message: dict[str, Any] = {"reply_channel": self.reply_channel, "path": self.path, "order": self.order}
        if isBinary:
            message["bytes"] = payload
        else:
            message["text"] = payload.decode("utf-8")  # Autobahn has validated it (1007 otherwise)
        # Reading pauses while too many of this connection's messages wait for the layer.
        inbound = self.inbound
        inbound.add(len(payload))
        turns = self.turns
        if turns is not None and turns.serial:
            turns.frame(message, inbound)  # one at a time, after the consumer's previous event
            return
        # Retried briefly on ChannelFull by the sender thread, which keeps the order.
        self.ctx.sender.send(self.number, "websocket.receive", message, self._receive_failed, retry_full=True,
                             flow=inbound)

    def send_failed(self, exc: BaseException) -> None:
        """A message of this connection could not be sent to the layer: close as its kind of failure asks."""
        self._receive_failed(exc)

    def _receive_failed(self, exc: BaseException) -> None:
        if self.ws_state is WSState.CLOSED:
            return
        layer = self.ctx.layer
        if isinstance(exc, layer.ChannelFull):
            self.ctx.warnings.warn(logger, "websocket.receive full for %s; closing %s with 1013", self.path,
                                   self.client)
            self.close_with(CLOSE_TRY_AGAIN_LATER)
        elif isinstance(exc, layer.MessageTooLarge):
            # Only when websocket_max_message_size was set above what the layer carries.
            logger.warning("websocket.receive for %s from %s is too large for the channel layer (%s); "
                           "closing with %d", self.path, self.client, exc, CLOSE_MESSAGE_TOO_BIG)
            self.close_with(CLOSE_MESSAGE_TOO_BIG)
        elif isinstance(exc, LayerUnavailable):
            # Down for now (the sender logs the outage once): try again later, as for a full channel.
            logger.debug("Channel layer unavailable; closing %s from %s with 1013", self.path, self.client)
            self.close_with(CLOSE_TRY_AGAIN_LATER)
        else:
            logger.error("Could not send websocket.receive for %s from %s: %s", self.path, self.client, exc)
            self.close_with(CLOSE_INTERNAL_ERROR)

    def describe(self) -> str:
        return f"{self.path} from {self.client}"

    def on_fail(self, code: int) -> None:
        # The application hears of the failure's code; the socket is not read again.
        if self.close_code is None:
            self.close_code = code
        self._begin_closing()
        self.inbound.close()

    def _begin_closing(self) -> None:
        if self.ws_state is not WSState.CLOSED:
            self.ws_state = WSState.CLOSING
        if self.closing_since is None:
            self.closing_since = self.ctx.now()

    # -- closing ------------------------------------------------------------------------

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        previous = self.ws_state
        self.ws_state = WSState.CLOSED
        ctx = self.ctx
        ctx.ws_connections.discard(self)
        self.inbound.close()
        self.handshake = self.connect_message = None
        retry, self.connect_retry = self.connect_retry, None
        if retry is not None and retry.active():
            # Gone while its websocket.connect waited for room: the application never heard of
            # it, so it hears no disconnect either (one would wait for ever behind enforce_ordering).
            retry.cancel()
            ctx.receiver.forget(self.reply_channel)
            self.reply_channel = None
        if self.reply_channel is None:
            return
        self.order += 1
        disconnect = {
            "reply_channel": self.reply_channel,
            # When the server closed, the application wants its own code, not the client's echo;
            # a clean close without a code is 1005 (RFC 6455 section 7.1.5), a dropped one 1006.
            "code": self.close_code or code or (1005 if wasClean else 1006),
            "path": self.path,
            "order": self.order,
        }
        turns = self.turns
        if turns is not None and turns.serial:
            turns.disconnect(disconnect)  # after the consumer's last event, with its state
        else:
            # Retried on ChannelFull like frames: when a thousand sockets close at once (a server
            # restart), a dropped disconnect would leave the application's bookkeeping (groups,
            # presence) for the socket behind.
            ctx.sender.send(self.number, "websocket.disconnect", dict(disconnect), retry_full=True)
            if turns is not None and previous is WSState.CONNECTING and turns.in_flight == 0:
                # A Channels 2-4 consumer may still answer the handshake: it then gets a disconnect with its state.
                turns.disconnect(disconnect)
            else:
                ctx.receiver.forget(self.reply_channel)
        if ctx.access_log is not None and previous is not WSState.CONNECTING:
            ctx.access_log.websocket("WSDISCONNECT", self.client, self.path)
        if ctx.verbose:
            logger.info("WebSocket %s from %s closed with %s", self.path, self.client, code)
        self.reply_channel = None

    def close_with(self, code: int, reason: str | None = None) -> None:
        """Start the closing handshake with ``code`` (server codes such as 1001/1013 included)."""
        if self.ws_state is WSState.CLOSED:
            return
        self._begin_closing()
        self.close_code = code
        # Autobahn's public sendClose only allows application codes; the server needs 1001/1011/1013 too.
        self.sendCloseFrame(code=code, reasonUtf8=reason.encode() if reason else None, isReply=False)

    def check_timeouts(self, now: float) -> None:
        """Enforce the timeouts, as the server's periodic check calls it with the time ``now``.

        Refuses a handshake the application has not answered within
        ``websocket_connect_timeout`` (503); closes (1000) an open socket older
        than its lifetime (``websocket_timeout``), however busy; pings a socket
        that has received nothing for ``ping_interval`` and drops it (1006) if
        nothing comes back within ``ping_timeout``; aborts a connection still
        closing ``websocket_close_timeout`` seconds after it began to (the peer never
        answered the close frame, or never read it).
        """
        state = self.ws_state
        turns = self.turns
        if turns is not None and turns.in_flight:
            turns.check(now)
        if state is WSState.CLOSING or (state is WSState.OPEN and self.state != self.STATE_OPEN):
            self._check_closing(now)
            return
        if state is WSState.CONNECTING:
            deadline = self.connect_deadline
            if deadline is not None and now > deadline and self.handshake is not None:
                self.ctx.warnings.warn(logger, "Application did not answer websocket.connect for %s from %s in %gs; "
                                       "refusing it", self.path, self.client,
                                       self.ctx.config.websocket_connect_timeout)
                self._deny(503, "Application did not answer in time")
            return
        if state is not WSState.OPEN:
            return
        lifetime = self.ctx.websocket_lifetime
        if lifetime is not None and now - self.connected_at > lifetime:
            if self.ctx.verbose:
                logger.info("WebSocket %s from %s reached its %gs lifetime; closing it", self.path, self.client,
                            lifetime)
            self.close_with(CLOSE_NORMAL)
            return
        config = self.ctx.config
        if self.ping_sent_at is not None:
            if config.ping_timeout and now - self.ping_sent_at > config.ping_timeout:
                logger.info("WebSocket %s from %s did not answer a ping; dropping it", self.path, self.client)
                self.close_code = 1006
                self._begin_closing()
                self.aborted = True
                self.outbound.abort()
            return  # one ping at a time
        if config.ping_interval and now - self.last_activity >= config.ping_interval:
            self.ping_sent_at = now
            self.sendPing()

    def _check_closing(self, now: float) -> None:
        since = self.closing_since
        if since is None:
            # Autobahn began closing on its own (it answered the client's close frame).
            self.closing_since = now
        elif now - since > self.ctx.config.websocket_close_timeout and not self.aborted:
            logger.info("WebSocket %s from %s still closing after %gs; aborting it", self.path, self.client,
                        self.ctx.config.websocket_close_timeout)
            self.aborted = True
            self.outbound.abort()

    def begin_shutdown(self) -> None:
        """Close with 1001 (going away); refuse a handshake in progress."""
        if self.ws_state is WSState.CONNECTING:
            self._deny(503, "Server shutting down")
        elif self.ws_state in (WSState.OPEN, WSState.ACCEPTING):
            self.close_with(CLOSE_GOING_AWAY)


def build_ws_factory(ctx: ServerContext) -> WebSocketServerFactory:
    """Return the Autobahn factory holding every connection's protocol options."""
    factory = WebSocketServerFactory(server=ctx.server_name.decode("latin-1") or None)
    factory.protocol = WebSocketProtocol
    factory.setProtocolOptions(
        # Pings are sent by our own timeout check: Autobahn's timers round to whole seconds.
        autoPingInterval=0,
        autoPingTimeout=0,
        # Protocol errors get a close frame with a code (1002, 1007) rather than a dropped socket.
        failByDrop=False,
        # The handshake is held by us, with our own deadline, and the closing
        # handshake is timed by our own check too (websocket_close_timeout), on the server's clock.
        openHandshakeTimeout=0,
        closeHandshakeTimeout=0,
        # Per-connection limits are set in onConnect (the default depends on the path).
        maxFramePayloadSize=0,
        maxMessagePayloadSize=0,
    )
    return factory
