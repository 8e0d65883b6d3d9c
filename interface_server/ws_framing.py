"""The frame level of a WebSocket server that cannot trust its clients, on Autobahn.

:class:`FramingProtocol` is Autobahn's Twisted server protocol with what
RFC 6455 asks of a server facing hostile clients, and nothing of the
channel layer (:class:`~interface_server.ws_protocol.WebSocketProtocol`
builds the ASGI side on it):

* **Failing** (section 7.1.7): every protocol error, invalid UTF-8 and
  oversized frame or message -- Autobahn reports each through its
  ``_fail_connection``/``_protocol_violation``/``_invalid_payload`` hooks,
  overridden here -- gets one close frame with its code (1002, 1007, 1009),
  then nothing more is read and the TCP connection is closed once that
  frame has been written. Autobahn itself would answer some of them (an
  invalid close frame) with a reset that loses the close frame, and keep
  buffering a control frame announced as 2**62 bytes long.
* **Size limits**: Autobahn checks ``maxFramePayloadSize`` and
  ``maxMessagePayloadSize`` at each frame header, before the payload is
  read; :meth:`FramingProtocol.set_payload_limits` sets them per connection.
* **A client that does not read**: every write goes through
  :meth:`FramingProtocol.sendData`, which counts what is written while the
  transport's send buffer is full (:class:`~interface_server.flow.OutboundBuffer`,
  registered on the transport as its producer); past the limit the
  connection fails with 1008.
* **Writing frames**: application messages are written as single frames
  (:func:`frame_parts`, through :class:`SharedFrames`), not ``sendMessage``
  (which would hold the application to the client's message limit).
"""

from __future__ import annotations

import logging
from typing import Any

from autobahn.twisted.websocket import WebSocketServerProtocol

from .flow import OutboundBuffer
from .ws_limits import CLOSE_INVALID_PAYLOAD, CLOSE_POLICY_VIOLATION, CLOSE_PROTOCOL_ERROR, frame_header

logger = logging.getLogger(__name__)

__all__ = ["FramingProtocol", "SharedFrames", "frame_parts"]

LARGE_PAYLOAD = 65536
"""Payloads from this size on are written after their header, not copied behind it."""


def frame_parts(opcode: int, payload: bytes) -> tuple[bytes, ...]:
    """Return the writes of one final, unfragmented data frame (no extension is ever negotiated).

    One write (header and payload together), or for a payload of
    :data:`LARGE_PAYLOAD` bytes or more the header and then the payload,
    which is not copied just to prepend a few bytes.
    """
    header = frame_header(opcode, len(payload))
    if len(payload) < LARGE_PAYLOAD:
        return (header + payload,)
    return header, payload


class SharedFrames:
    """The last data frame built, found again by the identity of its payload object.

    The members of a group send that one server holds all get the same
    message object (its payload decoded once), so the same ``str`` or
    ``bytes``: the frame is encoded and framed once for all of them. Any
    other payload is a new object and is framed anew. One per server
    (reactor thread only).
    """

    __slots__ = ("_data", "_parts")

    def __init__(self) -> None:
        self._data: str | bytes | None = None
        self._parts: tuple[bytes, ...] = ()

    def parts(self, opcode: int, data: str | bytes) -> tuple[bytes, ...]:
        """Return the frame's writes (:func:`frame_parts`; a ``str`` as UTF-8).

        ``opcode`` must be the one a ``str`` or ``bytes`` payload goes with
        (text 0x1, binary 0x2): it is not part of what is remembered.
        """
        if data is self._data:
            return self._parts
        parts = frame_parts(opcode, data.encode("utf-8") if isinstance(data, str) else data)
        self._data, self._parts = data, parts
        return parts

# The attributes Autobahn's server protocol sets on every connection (its
# options, copied from the factory, and its state), as of Autobahn 24-25.
# About ninety keys in an instance ``__dict__`` take a 3.3 KB table per
# connection -- a third of an idle WebSocket's memory; as slots they take 8
# bytes each. Only names no class of the hierarchy defines are made slots (a
# slot would hide a class-level default); an attribute a later Autobahn adds
# simply lands in ``__dict__``, and one it drops leaves an unused slot.
_AUTOBAHN_ATTRIBUTES = (
    "_perMessageCompress", "_transport_details", "_wskey", "allowNullOrigin", "allowedOrigins",
    "allowedOriginsPatterns", "applyMask", "autoFragmentSize", "autoPingInterval", "autoPingPending",
    "autoPingPendingCall", "autoPingPendingSent", "autoPingPendingSeq", "autoPingRestartOnAnyTraffic",
    "autoPingSize", "autoPingTimeout", "autoPingTimeoutCall", "closeHandshakeTimeout",
    "closeHandshakeTimeoutCall", "closedByMe", "current_frame", "data", "droppedByMe", "echoCloseCodeReason",
    "failByDrop", "failedByMe", "flashSocketPolicy", "http_headers", "http_request_data", "http_request_host",
    "http_request_params", "http_request_path", "http_request_uri", "http_response_data", "http_status_line",
    "inside_message", "is_closed", "is_open", "localCloseCode", "localCloseReason", "logFrames", "logOctets",
    "maskServerFrames", "maxConnections", "maxFramePayloadSize", "maxMessagePayloadSize", "openHandshakeTimeout",
    "openHandshakeTimeoutCall", "perMessageCompressionAccept", "remoteCloseCode", "remoteCloseReason",
    "requireMaskedClientFrames", "send_queue", "send_state", "serveFlashSocketPolicy", "state", "tcpNoDelay",
    "trackTimings", "trackedTimings", "trafficStats", "triggered", "trustXForwardedFor", "utf8validateIncoming",
    "utf8validator", "versions", "wasClean", "wasCloseHandshakeTimeout", "wasMaxFramePayloadSizeExceeded",
    "wasMaxMessagePayloadSizeExceeded", "wasNotCleanReason", "wasOpenHandshakeTimeout",
    "wasServerConnectionDropTimeout", "wasServingFlashSocketPolicyFile", "webStatus", "websocket_extensions",
    "websocket_extensions_in_use", "websocket_origin", "websocket_protocol_in_use", "websocket_protocols",
    "websocket_version",
)


def instance_slots(base: type, names: tuple[str, ...]) -> tuple[str, ...]:
    """The ``names`` that no class in ``base``'s hierarchy defines: safe to make slots of a subclass."""
    return tuple(name for name in names if not hasattr(base, name))


class FramingProtocol(WebSocketServerProtocol):
    """Autobahn's server protocol, failing safely on hostile input (see the module docstring).

    Call :meth:`init_framing` before ``makeConnection``. Subclasses learn
    of a failure through :meth:`on_fail` and may describe the connection in
    log lines by overriding :meth:`describe`.

    Attributes:
        outbound: what is written while the client is not reading.
        discarding: True once the connection has failed: nothing more is read.
    """

    __slots__ = instance_slots(WebSocketServerProtocol, _AUTOBAHN_ATTRIBUTES + ("outbound", "discarding"))

    outbound: OutboundBuffer
    discarding: bool

    def init_framing(self, max_pending_bytes: int, clock: Any = None, send_timeout: float | None = None) -> None:
        """Set up the bookkeeping.

        ``max_pending_bytes`` is the most a client may leave unread; a client
        that leaves the socket's send buffer full for ``send_timeout`` seconds
        (timed on ``clock``, the reactor) is dropped.
        """
        self.outbound = OutboundBuffer(max_pending_bytes, clock, send_timeout, self._stalled)
        self.discarding = False

    def connectionMade(self) -> None:
        super().connectionMade()
        # The transport pauses and resumes this producer as its send buffer fills and drains.
        self.outbound.attach(self.transport)

    def set_payload_limits(self, message: int, frame: int) -> None:
        """Refuse (1009) client messages over ``message`` bytes and frames over ``frame`` bytes."""
        self.maxMessagePayloadSize = message
        self.maxFramePayloadSize = frame

    def describe(self) -> str:
        """Who the connection is, for log lines."""
        return repr(self.peer)

    def on_fail(self, code: int) -> None:
        """The connection has failed with ``code`` (its close frame, if any, is written); for subclasses."""

    # -- writing -------------------------------------------------------------------

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Every write passes here: what the client does not read is counted
        # (pongs to its pings included), and past max_pending_bytes it fails.
        outbound = self.outbound
        if outbound.paused and outbound.add(len(data)) and not self.discarding and self.state != self.STATE_CLOSED:
            self._too_slow()
            return
        # Autobahn's sendData builds coloured debug-log arguments on every
        # write whatever the log level (about a fifth of a broadcast frame's
        # cost); the common case -- nothing queued, no chopping, no octet
        # logging -- is a plain transport write plus its traffic counters.
        if sync or chopsize or self.send_queue or self.logOctets:
            # Autobahn queues these and writes them to the transport itself, later: what is
            # written after them must not overtake them by going straight to the socket.
            outbound.hold()
            super().sendData(data, sync, chopsize)
            return
        outbound.write(data)
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in (self.STATE_CONNECTING, self.STATE_PROXY_CONNECTING):
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

    def _too_slow(self) -> None:
        """More than ``max_pending_bytes`` wait for the client: fail with 1008, in one warning."""
        logger.warning("WebSocket %s is not reading: over %d bytes wait for it (max_pending_bytes); closing it "
                       "with %d", self.describe(), self.outbound.limit, CLOSE_POLICY_VIOLATION)
        self.fail(CLOSE_POLICY_VIOLATION, "client too slow", log=False)

    def _closeConnection(self, abort: bool = False) -> None:
        # Autobahn's own closes (once a closing handshake is done, or timed out) come here: through
        # the outbound buffer, as this class's own do, so writing straight to the socket stops too.
        if abort:
            self.outbound.abort()
        else:
            self.outbound.close()

    def _stalled(self) -> None:
        """The client has read nothing for ``send_timeout``: drop it (a close frame would not be read)."""
        if self.state == self.STATE_CLOSED:
            return
        logger.info("WebSocket %s has read nothing for %gs (send_timeout); dropping it", self.describe(),
                    self.outbound.stall_timeout)
        self.discarding = True
        self.data = b""
        self.on_fail(1006)
        self.outbound.abort()

    # -- failing (Autobahn's hooks) --------------------------------------------------

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        # Autobahn calls this for oversized frames and messages (with failByDrop off).
        self.fail(code, reason)

    def _protocol_violation(self, reason: str) -> bool:
        self.fail(CLOSE_PROTOCOL_ERROR, reason)
        return True  # tells Autobahn to stop processing: nothing after a violation is read

    def _invalid_payload(self, reason: str) -> bool:
        self.fail(CLOSE_INVALID_PAYLOAD, reason)
        return True

    def fail(self, code: int, reason: str, log: bool = True) -> None:
        """Fail the connection (RFC 6455 section 7.1.7): a close frame with ``code``, then close.

        Nothing more is read from the client, and the TCP connection is
        closed once the close frame has been written, so the client gets it
        rather than a reset. Logs one line (unless ``log`` is false), never a
        traceback. Calls :meth:`on_fail`. A second failure does nothing.
        """
        if self.discarding or self.state == self.STATE_CLOSED:
            return
        if log:
            logger.info("Closing WebSocket %s with %d: %s", self.describe(), code, reason)
        self.failedByMe = True
        self.wasClean = False
        self.wasNotCleanReason = reason
        self.discarding = True
        self.data = b""
        if self.state == self.STATE_OPEN:
            # A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455 section 5.5).
            reason_bytes = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
            self.sendCloseFrame(code=code, reasonUtf8=reason_bytes, isReply=False)
        self.on_fail(code)
        self.outbound.close()
