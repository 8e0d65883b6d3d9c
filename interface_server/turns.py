"""One event at a time per connection, for Channels 2-4 consumers running on workers.

A Channels 2-4 consumer keeps attributes between the events of its
connection and expects them one at a time, in order. Its events may run on
any worker, so this server holds what ties them together (the workers'
side is ``channels.turns``):

* the connection's **state**, an opaque blob (msgpack bytes) the worker
  returns when an event it handled changed it (each event says
  ``keeps_state``: an answer without one leaves it as it was) and gets back
  with the next one;
* the connection's **queue**: frames from the client and typed events
  (messages with a ``type`` sent to the connection's reply channel by
  ``group_send`` or ``channel_layer.send``), forwarded one at a time: the
  next only when the worker's answer for the previous one has come.

A connection becomes *serial* when the first answer in this format comes
(``{"replies": [...], "handled": n, "state": ...}``, the worker's answer to
``websocket.connect``); until then, and for ever on a Channels 1.x
connection, frames go out as they come, as before.

A turn that gets no answer within ``websocket_handler_timeout`` (its worker
died mid-handler) closes the socket with 1011; the disconnect still goes to
a worker with the last saved state, so the consumer's ``disconnect()`` runs.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, Callable

from asgi_backends.base import loggable_name

if TYPE_CHECKING:
    from .flow import InboundFlow
    from .ws_protocol import WebSocketProtocol

logger = logging.getLogger(__name__)

__all__ = ["EVENT_CHANNEL", "MAX_QUEUED_EVENTS", "ConnectionTurns", "is_typed_event"]

EVENT_CHANNEL = "websocket.event"
"""Where typed events are forwarded (workers route it to the connection's consumer)."""

MAX_QUEUED_EVENTS = 100
"""Typed events one connection may have waiting; more are dropped (as a full channel drops ``group_send``)."""

REPLY_KEYS = frozenset({"text", "bytes", "close", "accept"})


def is_typed_event(message: dict[str, Any]) -> bool:
    """True for a message with a ``type`` and none of a 1.x reply's keys (a consumer event, not a frame)."""
    return "type" in message and not REPLY_KEYS.intersection(message)


class ConnectionTurns:
    """The queue and state of one WebSocket served by a Channels 2-4 consumer.

    Args:
        proto: the connection; it applies replies (``apply_reply``), closes
            (``close_with``) and is told when a send failed (``send_failed``).
    """

    __slots__ = ("proto", "serial", "in_flight", "since", "next_turn", "state", "queue", "events", "closed",
                 "finished")

    def __init__(self, proto: WebSocketProtocol) -> None:
        self.proto = proto
        self.serial = False
        self.in_flight: int | None = 0  # websocket.connect is turn 0, sent by the protocol itself
        self.since = proto.ctx.now()
        self.next_turn = 1
        self.state: Any = None
        # Made when something first waits: most connections (all 1.x ones) never need it.
        self.queue: collections.deque[tuple[str, dict[str, Any], InboundFlow | None]] | None = None
        self.events = 0
        self.closed = False
        self.finished = False

    # -- from the worker -----------------------------------------------------------

    def answer(self, message: dict[str, Any], apply_reply: Callable[[dict[str, Any]], None]) -> None:
        """Apply a worker's answer: its replies, then (with ``handled``) the turn's end and the new state."""
        self.serial = True
        replies = message.get("replies")
        if isinstance(replies, list):
            for reply in replies:
                if isinstance(reply, dict):
                    apply_reply(reply)
        handled = message.get("handled")
        if handled is None or handled != self.in_flight:
            if handled is not None:
                logger.debug("Ignoring a late answer for turn %s of %s", handled, self.proto.describe())
            return
        if "state" in message:  # without one, the turn left the state as it was
            self.state = message["state"]
        self.in_flight = None
        self.pump()

    def event(self, message: dict[str, Any]) -> None:
        """Queue a typed event for the consumer (dropped when too many wait).

        The protocol calls it for a serial connection, or one whose
        handshake is still held (the consumer's ``connect()`` may have
        joined a group whose events arrive before its answer).
        """
        proto = self.proto
        if self.closed:
            return
        if self.events >= MAX_QUEUED_EVENTS:
            proto.ctx.warnings.warn(logger, "Dropping a %r event for %s: %d events already wait for its consumer",
                                    message.get("type"), proto.describe(), MAX_QUEUED_EVENTS)
            return
        self.events += 1
        self._queue().append((EVENT_CHANNEL, {"reply_channel": proto.reply_channel, "path": proto.path,
                                           "event": message}, None))
        self.pump()

    # -- from the client -----------------------------------------------------------

    def frame(self, message: dict[str, Any], flow: InboundFlow) -> None:
        """Queue a ``websocket.receive`` message (``flow`` already counts it)."""
        self._queue().append(("websocket.receive", message, flow))
        self.pump()

    def disconnect(self, message: dict[str, Any]) -> None:
        """Queue the ``websocket.disconnect`` message; queued typed events are dropped (no one can see them)."""
        self.closed = True
        if self.events:
            self.queue = collections.deque(item for item in self._queue() if item[0] != EVENT_CHANNEL)
            self.events = 0
        self._queue().append(("websocket.disconnect", message, None))
        self.pump()
        if not self.finished and self.in_flight is not None:
            # Closed while a worker has the connection: wait for its answer (or the timeout) off the
            # periodic check, which only sees open connections.
            ctx = self.proto.ctx
            ctx.reactor.callLater(self._limit() + 0.5, self.check, None)

    def abandon(self) -> None:
        """A 1.x answer came for a connection that closed during its handshake: stop waiting for a 2-4 one."""
        if self.closed and not self.serial and not self.finished:
            self.finished = True
            queue = self.queue
            self.proto.ctx.receiver.forget(queue[-1][1].get("reply_channel") if queue else None)
            self.queue = None

    def _limit(self) -> float:
        """How long a worker may hold the turn: the handshake's timeout for the connect, else the handler's."""
        config = self.proto.ctx.config
        if not self.serial and config.websocket_connect_timeout is not None:
            return config.websocket_connect_timeout
        return config.websocket_handler_timeout

    def _queue(self) -> collections.deque[tuple[str, dict[str, Any], InboundFlow | None]]:
        queue = self.queue
        if queue is None:
            queue = self.queue = collections.deque()
        return queue

    # -- forwarding ------------------------------------------------------------------

    def pump(self) -> None:
        """Forward the next queued message if no turn is at a worker."""
        if self.in_flight is not None or not self.queue or not self.serial:
            return
        channel, message, flow = self.queue.popleft()
        proto = self.proto
        ctx = proto.ctx
        if channel == EVENT_CHANNEL:
            self.events -= 1
        number = self.next_turn
        self.next_turn += 1
        message["turn"] = number
        message["state"] = self.state
        # Tells the worker it may answer without a state when the handler changed none (this server
        # keeps its copy); a worker newer than an interface server it meets mid-deploy then still sends it.
        message["keeps_state"] = True
        if channel == "websocket.disconnect":
            self.finished = True
            ctx.sender.send(proto.number, channel, message, retry_full=True)
            ctx.receiver.forget(message.get("reply_channel"))
            self.queue = None
            return
        self.in_flight = number
        self.since = ctx.now()
        on_error = self._event_failed if channel == EVENT_CHANNEL else self._send_failed
        ctx.sender.send(proto.number, channel, message, on_error, retry_full=True, flow=flow)

    def _send_failed(self, exc: BaseException) -> None:
        """A frame could not be sent (after retries): close as the protocol does for any frame."""
        self.in_flight = None
        if not self.closed:
            self.proto.send_failed(exc)
        self.pump()

    def _event_failed(self, exc: BaseException) -> None:
        """A typed event could not be sent (after retries): it is dropped, as a full ``group_send`` drops."""
        self.in_flight = None
        self.proto.ctx.warnings.warn(logger, "Dropping a typed event for %s: %s could not take it (%s)",
                                     self.proto.describe(), EVENT_CHANNEL, exc)
        self.pump()

    def check(self, now: float | None) -> None:
        """Close the socket (1011) if a worker has held a turn past ``websocket_handler_timeout``.

        Called by the protocol's periodic timeout check, and once by a timer
        for a connection that closed while a turn was out. The turn is given
        up: the next queued message (the disconnect, once the socket has
        closed) goes out with the last saved state.
        """
        if self.finished or self.in_flight is None:
            return
        if self.in_flight == 0 and not self.serial and not self.closed:
            return  # the handshake's own timeout (websocket_connect_timeout) covers it
        ctx = self.proto.ctx
        now = ctx.now() if now is None else now
        limit = self._limit()
        if now - self.since < limit:
            if self.closed:
                ctx.reactor.callLater(limit - (now - self.since) + 0.5, self.check, None)
            return
        if not self.serial:
            # Closed during its handshake and never answered: whatever consumer it had got the 1.x disconnect.
            self.abandon()
            return
        logger.warning("No worker answered turn %d of %s within %gs (did its worker die?); closing it with 1011 "
                       "(reply channel %s)", self.in_flight, self.proto.describe(), limit,
                       loggable_name(self.proto.reply_channel or ""))
        self.in_flight = None
        if not self.closed:
            self.proto.close_with(1011)
        self.pump()
