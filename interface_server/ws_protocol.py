"""The WebSocket side of the server, on Autobahn's Twisted server protocol.

The HTTP protocol hands a connection over when it sees an upgrade request.
The opening handshake is held (``onConnect`` returns a Deferred) until the
application answers ``websocket.connect`` on the reply channel: accept,
reject, or a first frame (which accepts).

Timeouts follow Daphne 1.x: ``websocket_connect_timeout`` bounds how long
the handshake waits for the application, ``websocket_timeout`` is the
longest a socket may live at all (traffic does not extend it), and idle or
dead peers are found by pinging (``ping_interval``/``ping_timeout``).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from .http_parse import RequestHead
    from .server import ServerContext

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

# RFC 6455 section 7.4 and the IANA registry: the codes an endpoint may put in a
# close frame. 1004 is reserved; 1005, 1006 and 1015 must never be sent.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def is_sendable_close_code(code: object) -> bool:
    """Return True if ``code`` may be sent in a close frame (RFC 6455 section 7.4).

    Those are 1000-1003, 1007-1014 and 3000-4999 (3000-3999 registered with
    IANA, 4000-4999 private to the application); anything else, including a
    ``bool`` or a string of digits, is not.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999


class WSState(enum.Enum):
    """Where a WebSocket is in its lifecycle."""

    CONNECTING = "handshake held for the application"
    ACCEPTING = "accepted, handshake response going out"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class WebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection, relaying frames to and from the channel layer."""

    ctx: ServerContext
    head: RequestHead

    def setup(self, ctx: ServerContext, head: RequestHead, client: Any, server: Any, scheme: str) -> None:
        """Attach server state and what the HTTP side parsed (called before ``makeConnection``)."""
        self.ctx = ctx
        self.number = next(ctx.connection_numbers)
        self.head = head
        self.client = client
        self.server = server
        self.scheme = "wss" if scheme == "https" else "ws"
        self.ws_state = WSState.CONNECTING
        self.reply_channel: str | None = None
        self.order = 0
        self.pending: list[dict[str, Any]] = []
        self.handshake: Deferred | None = None
        self.subprotocol: str | None = None
        self.connect_deadline: float | None = None
        # The lifetime (websocket_timeout) counts from here, the upgrade request, as Daphne's does.
        self.connected_at = self.last_activity = ctx.now()
        self.close_code: int | None = None
        self.ping_sent_at: float | None = None

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
        if ctx.shutting_down:
            raise ConnectionDeny(503, "Server shutting down")
        self.reply_channel = ctx.receiver.new_channel(self)
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
        # Created before sending: with inline sends a failure arrives before send() returns.
        handshake = self.handshake = Deferred()
        connect_timeout = ctx.config.websocket_connect_timeout
        self.connect_deadline = None if connect_timeout is None else ctx.now() + connect_timeout
        if ctx.access_log is not None:
            ctx.access_log.websocket("WSCONNECTING", client, head.path)
        if ctx.verbose:
            logger.info("WebSocket %s from %s connecting on %s", head.path, client, self.reply_channel)
        ctx.sender.send(self.number, "websocket.connect", message, self._connect_failed)
        return handshake

    def _connect_failed(self, exc: BaseException) -> None:
        """``websocket.connect`` could not be sent: refuse the handshake with 503."""
        if self.ws_state is not WSState.CONNECTING or self.handshake is None:
            return
        full = isinstance(exc, self.ctx.layer.ChannelFull)
        if not full:
            logger.error("Could not send websocket.connect for %s from %s: %s", self.head.path, self.client, exc)
        self.ctx.receiver.forget(self.reply_channel)
        self.reply_channel = None  # the application never heard of it: no disconnect either
        self._deny(503, "Server is at capacity" if full else "Channel layer unavailable")

    def _deny(self, code: int, reason: str) -> None:
        handshake, self.handshake = self.handshake, None
        self.ws_state = WSState.CLOSING
        if self.ctx.access_log is not None:
            self.ctx.access_log.websocket("WSREJECT", self.client, self.head.path)
        if handshake is not None:
            handshake.errback(ConnectionDeny(code, reason))

    def _accept(self) -> None:
        handshake, self.handshake = self.handshake, None
        self.ws_state = WSState.ACCEPTING
        if handshake is not None:
            handshake.callback((self.subprotocol, {}))

    def onOpen(self) -> None:
        self.ws_state = WSState.OPEN
        if self.ctx.access_log is not None:
            self.ctx.access_log.websocket("WSCONNECT", self.client, self.head.path)
        pending, self.pending = self.pending, []
        for message in pending:
            if self.ws_state is not WSState.OPEN:
                break
            self._apply(message)

    # -- replies from the application ---------------------------------------------

    def handle_reply(self, message: dict[str, Any]) -> None:
        """Act on one message from the reply channel."""
        state = self.ws_state
        if state is WSState.OPEN:
            self._apply(message)
        elif state is WSState.CONNECTING:
            accept = message.get("accept")
            frame = "text" in message or "bytes" in message
            if accept is False or (message.get("close") and accept is not True and not frame):
                self._deny(403, "Access denied")
            elif accept or frame:
                self.pending.append(message)
                self._accept()
        elif state is WSState.ACCEPTING:
            self.pending.append(message)
        # CLOSING/CLOSED: the client will not see it; dropping is the contract.

    def _apply(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is not None:
            if isinstance(text, str):
                self.sendMessage(text.encode("utf-8"), False)
            else:
                logger.error("websocket reply 'text' must be str, not %s (client %s, path %s)",
                             type(text).__name__, self.client, self.head.path)
        data = message.get("bytes")
        if data is not None:
            if isinstance(data, bytes):
                self.sendMessage(data, True)
            else:
                logger.error("websocket reply 'bytes' must be bytes, not %s (client %s, path %s)",
                             type(data).__name__, self.client, self.head.path)
        close = message.get("close")
        if close:
            code = CLOSE_NORMAL if close is True else close
            if not is_sendable_close_code(code):
                self._bad_close_code(close)
                code = CLOSE_NORMAL
            self.close_with(code)

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
            key, self.head.path,
        )

    # -- writing -------------------------------------------------------------------

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Autobahn's sendData builds coloured debug-log arguments on every
        # write whatever the log level (about a fifth of a broadcast frame's
        # cost); the common case -- nothing queued, no chopping, no octet
        # logging -- is a plain transport write plus its traffic counters.
        if sync or chopsize or self.send_queue or self.logOctets:
            super().sendData(data, sync, chopsize)
            return
        self.transport.write(data)
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in (self.STATE_CONNECTING, self.STATE_PROXY_CONNECTING):
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

    # -- frames from the client ------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        # Any traffic, pongs included, shows the peer is alive: it answers an
        # outstanding ping and postpones the next one.
        self.last_activity = self.ctx.now()
        self.ping_sent_at = None
        self._dataReceived(data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.order += 1
        message: dict[str, Any] = {"reply_channel": self.reply_channel, "path": self.head.path, "order": self.order}
        if isBinary:
            message["bytes"] = payload
        else:
            message["text"] = payload.decode("utf-8")  # Autobahn has validated it (1007 otherwise)
        # Retried briefly on ChannelFull by the sender thread, which keeps the order.
        self.ctx.sender.send(self.number, "websocket.receive", message, self._receive_failed, retry_full=True)

    def _receive_failed(self, exc: BaseException) -> None:
        if self.ws_state is WSState.CLOSED:
            return
        if isinstance(exc, self.ctx.layer.ChannelFull):
            logger.warning("websocket.receive full for %s; closing %s with 1013", self.head.path, self.client)
            self.close_with(CLOSE_TRY_AGAIN_LATER)
        else:
            logger.error("Could not send websocket.receive for %s from %s: %s", self.head.path, self.client, exc)
            self.close_with(CLOSE_INTERNAL_ERROR)

    # -- closing ------------------------------------------------------------------------

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        previous = self.ws_state
        self.ws_state = WSState.CLOSED
        ctx = self.ctx
        ctx.ws_connections.discard(self)
        self.handshake = None
        if self.reply_channel is None:
            return
        ctx.receiver.forget(self.reply_channel)
        self.order += 1
        ctx.sender.send(self.number, "websocket.disconnect", {
            "reply_channel": self.reply_channel,
            # When the server closed, the application wants its own code, not the client's echo.
            "code": self.close_code or code or 1006,
            "path": self.head.path,
            "order": self.order,
        })
        if ctx.access_log is not None and previous is not WSState.CONNECTING:
            ctx.access_log.websocket("WSDISCONNECT", self.client, self.head.path)
        if ctx.verbose:
            logger.info("WebSocket %s from %s closed with %s", self.head.path, self.client, code)
        self.reply_channel = None

    def close_with(self, code: int, reason: str | None = None) -> None:
        """Start the closing handshake with ``code`` (server codes such as 1001/1013 included)."""
        if self.ws_state is WSState.CLOSED:
            return
        self.ws_state = WSState.CLOSING
        self.close_code = code
        # Autobahn's public sendClose only allows application codes; the server needs 1001/1011/1013 too.
        self.sendCloseFrame(code=code, reasonUtf8=reason.encode() if reason else None, isReply=False)

    def check_timeouts(self, now: float) -> None:
        """Enforce the timeouts, as the server's periodic check calls it with the time ``now``.

        Refuses a handshake the application has not answered within
        ``websocket_connect_timeout`` (503); closes (1000) an open socket older
        than its lifetime (``websocket_timeout``), however busy; pings a socket
        that has received nothing for ``ping_interval`` and drops it (1006) if
        nothing comes back within ``ping_timeout``.
        """
        state = self.ws_state
        if state is WSState.CONNECTING:
            deadline = self.connect_deadline
            if deadline is not None and now > deadline and self.handshake is not None:
                logger.warning("Application did not answer websocket.connect for %s from %s in %gs; refusing it",
                               self.head.path, self.client, self.ctx.config.websocket_connect_timeout)
                self._deny(503, "Application did not answer in time")
            return
        if state is not WSState.OPEN:
            return
        lifetime = self.ctx.websocket_lifetime
        if lifetime is not None and now - self.connected_at > lifetime:
            if self.ctx.verbose:
                logger.info("WebSocket %s from %s reached its %gs lifetime; closing it", self.head.path, self.client,
                            lifetime)
            self.close_with(CLOSE_NORMAL)
            return
        config = self.ctx.config
        if self.ping_sent_at is not None:
            if config.ping_timeout and now - self.ping_sent_at > config.ping_timeout:
                logger.info("WebSocket %s from %s did not answer a ping; dropping it", self.head.path, self.client)
                self.close_code = 1006
                self.ws_state = WSState.CLOSING
                self.transport.abortConnection()
            return  # one ping at a time
        if config.ping_interval and now - self.last_activity >= config.ping_interval:
            self.ping_sent_at = now
            self.sendPing()

    def begin_shutdown(self) -> None:
        """Close with 1001 (going away); refuse a handshake in progress."""
        if self.ws_state is WSState.CONNECTING:
            self._deny(503, "Server shutting down")
        elif self.ws_state in (WSState.OPEN, WSState.ACCEPTING):
            self.close_with(CLOSE_GOING_AWAY)


def build_ws_factory(ctx: ServerContext) -> WebSocketServerFactory:
    """Return the Autobahn factory holding every connection's protocol options."""
    config = ctx.config
    factory = WebSocketServerFactory(server=ctx.server_name.decode("latin-1") or None)
    factory.protocol = WebSocketProtocol
    factory.setProtocolOptions(
        # Pings are sent by our own timeout check: Autobahn's timers round to whole seconds.
        autoPingInterval=0,
        autoPingTimeout=0,
        # Protocol errors get a close frame with a code (1002, 1007) rather than a dropped socket.
        failByDrop=False,
        # The handshake is held by us, with our own deadline.
        openHandshakeTimeout=0,
        closeHandshakeTimeout=5,
    )
    return factory
