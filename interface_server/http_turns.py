"""One event at a time per HTTP request served by a Channels 2-4 consumer (``AsyncHttpConsumer``) on workers.

As for a WebSocket served by such a consumer (:mod:`interface_server.turns`),
this server holds what ties a request's events together while its response
is open (the workers' side is ``channels.http_turn``):

* the request's **state**, an opaque blob the worker returns at the end of
  every turn and gets back with the next one;
* its **queue**: typed events sent to the request's reply channel (the
  consumer's ``channel_name``) by ``group_send`` or ``channel_layer.send``,
  forwarded on :data:`EVENT_CHANNEL` one at a time -- the next only when
  the worker's answer for the previous one has come;
* its **end**: once the worker says the consumer is done (``end``),
  nothing more goes to a worker. A client gone before that gets its
  ``http.disconnect`` sent after the turn in flight, with the state that
  turn leaves, so the consumer's ``disconnect()`` runs.

A request becomes *serial* with the worker's first message in this format
(``{"replies": [...]}``). Until then typed events wait (the consumer's
``handle()`` may have joined a group whose events come before its first
answer); a plain 1.x response (Django's views) drops them.

A turn that a worker holds longer than ``websocket_handler_timeout``
without a sign of life (output, or its answer) ends the response: a 503
if nothing was written yet, else the response is cut short; the
disconnect then goes out with the last saved state.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, Callable

from asgi_backends.base import loggable_name

from .deadline import Deadline
from .turns import MAX_QUEUED_EVENTS

if TYPE_CHECKING:
    from .http_protocol import HTTPProtocol

logger = logging.getLogger(__name__)

__all__ = ["EVENT_CHANNEL", "RequestTurns", "consumer_message"]

EVENT_CHANNEL = "http.event"
"""Where typed events for an open HTTP response are forwarded (workers route it to the request's consumer)."""


def consumer_message(proto: HTTPProtocol, message: dict[str, Any]) -> None:
    """Act on a consumer's answer (``replies``) or a typed event that came for the connection's request."""
    turns = proto.turns
    if turns is None:
        if proto.reply_channel is None or (proto.writer.status and "replies" not in message):
            logger.debug("Dropping a typed event for %s: no Channels 2-4 consumer serves its request", proto.client)
            return
        turns = proto.turns = RequestTurns(proto, proto.reply_channel, proto.request.path)
    if "replies" in message:
        turns.answer(message, proto.write_reply)
    else:
        turns.event(message)


class RequestTurns:
    """The queue and state of one HTTP request served by a Channels 2-4 consumer.

    Args:
        proto: the connection; it writes replies and ends a response a
            consumer cannot finish (``give_up``).
        reply_channel: the request's reply channel (kept routed to
            ``proto`` until nothing more can come on it).
        path: the request's path (for the messages and log lines).
    """

    __slots__ = ("proto", "reply_channel", "path", "serial", "in_flight", "since", "next_turn", "state", "queue",
                 "events", "closed", "finished", "deadline")

    def __init__(self, proto: HTTPProtocol, reply_channel: str, path: str) -> None:
        self.proto = proto
        self.reply_channel = reply_channel
        self.path = path
        self.serial = False
        self.in_flight: int | None = 0  # the http.request is turn 0, sent by the protocol itself
        self.since = proto.ctx.reactor.seconds()
        self.next_turn = 1
        self.state: Any = None
        self.queue: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self.events = 0
        self.closed = False  # the client will see no more of the response
        self.finished = False  # nothing more goes to a worker
        self.deadline = Deadline(proto.ctx.reactor, self._expired)

    def describe(self) -> str:
        return f"{self.path} ({loggable_name(self.reply_channel)})"

    # -- from the worker -----------------------------------------------------------

    def answer(self, message: dict[str, Any], write: Callable[[dict[str, Any]], None]) -> None:
        """Apply a worker's message: its replies (``write`` each), then the turn's end, state or the consumer's end."""
        self.serial = True
        replies = message.get("replies")
        if isinstance(replies, list):
            for reply in replies:
                if self.finished:
                    break  # the response completed (or was cut short) on an earlier reply
                if isinstance(reply, dict):
                    write(reply)
        if message.get("end"):
            if not self.finished:
                self.finish()
                self._consumer_done()
            return
        if self.finished:
            return
        handled = message.get("handled")
        if handled is None:
            if self.in_flight is not None:
                # Output mid-turn: the worker is alive and the handler still going.
                self.since = self.proto.ctx.reactor.seconds()
                self.deadline.set(self.since + self._limit())
            return
        if handled != self.in_flight:
            logger.debug("Ignoring a late answer for turn %s of %s", handled, self.describe())
            return
        self.state = message.get("state")
        self.in_flight = None
        self.deadline.clear()
        self.pump()

    def event(self, message: dict[str, Any]) -> None:
        """Queue a typed event for the consumer (dropped when too many wait, or once the client has gone)."""
        if self.closed or self.finished:
            return
        ctx = self.proto.ctx
        if self.events >= MAX_QUEUED_EVENTS:
            ctx.warnings.warn(logger, "Dropping a %r event for %s: %d events already wait for its consumer",
                              message.get("type"), self.describe(), MAX_QUEUED_EVENTS)
            return
        self.events += 1
        self.queue.append((EVENT_CHANNEL, {"reply_channel": self.reply_channel, "path": self.path, "event": message}))
        self.pump()

    # -- from the client -----------------------------------------------------------

    def gone(self) -> None:
        """The client will see no more of the response: ``http.disconnect`` goes after the turn in flight.

        Queued typed events are dropped (no one can see their output). If
        the request never became serial, the protocol has already sent a
        plain ``http.disconnect``: this one goes only if a consumer's
        answer still comes for turn 0 (it then carries the consumer's state).
        """
        if self.closed or self.finished:
            return
        self.closed = True
        self.queue.clear()
        self.events = 0
        self.queue.append(("http.disconnect", {"reply_channel": self.reply_channel, "path": self.path}))
        self.pump()
        if not self.finished and self.in_flight is not None:
            self.deadline.set(self.since + self._limit())

    def abandon(self) -> None:
        """A plain 1.x response came: no Channels 2-4 consumer serves this request; drop what waits for one."""
        if not self.finished:
            self.finished = True
            self.queue.clear()
            self.events = 0
            self.deadline.cancel()

    def finish(self) -> None:
        """Nothing more goes to a worker: forget the request (its reply channel included)."""
        self.abandon()
        self.proto.ctx.receiver.forget(self.reply_channel)

    def plain_response(self, closed: bool) -> None:
        """A 1.x response came (Django's views): no consumer serves the request; the protocol has let go of us."""
        if closed:
            self.finish()  # for a client that has gone: nothing more to route
        else:
            self.abandon()  # the response goes on, on the same reply channel

    def _consumer_done(self) -> None:
        """The consumer is done: it completed the response -- or, a bug, it did not, and the response is ended."""
        proto = self.proto
        if proto.turns is not self:
            return
        proto.turns = None
        if proto.responding:
            logger.warning("The consumer of %s ended without completing its response; ending it", self.describe())
            proto.reply_channel = None  # forgotten already: nothing more comes
            proto.give_up(500, "The application ended without completing its response")

    # -- forwarding ------------------------------------------------------------------

    def _limit(self) -> float:
        """How long a worker may hold a turn without a sign of life (before the first answer: the response's timeout)."""
        config = self.proto.ctx.config
        if not self.serial and config.http_timeout is not None:
            return config.http_timeout
        return config.websocket_handler_timeout

    def pump(self) -> None:
        """Forward the next queued message if no turn is at a worker."""
        if self.in_flight is not None or not self.queue or not self.serial or self.finished:
            return
        channel, message = self.queue.popleft()
        proto = self.proto
        ctx = proto.ctx
        number = self.next_turn
        self.next_turn += 1
        message["turn"] = number
        message["state"] = self.state
        if channel == "http.disconnect":
            self.finish()
            ctx.sender.send(proto.number, channel, message, retry_full=True)
            return
        self.events -= 1
        self.in_flight = number
        self.since = ctx.reactor.seconds()
        self.deadline.set(self.since + self._limit())
        ctx.sender.send(proto.number, channel, message, self._event_failed, retry_full=True)

    def _event_failed(self, exc: BaseException) -> None:
        """A typed event could not be sent (after retries): it is dropped, as a full ``group_send`` drops."""
        self.in_flight = None
        self.deadline.clear()
        self.proto.ctx.warnings.warn(logger, "Dropping a typed event for %s: %s could not take it (%s)",
                                     self.describe(), EVENT_CHANNEL, exc)
        self.pump()

    def _expired(self) -> None:
        """A worker has held a turn past its limit: give up the response, then send the disconnect."""
        if self.finished or self.in_flight is None:
            return
        if not self.serial:
            # The client left during turn 0 and no consumer ever answered: a view served it, and heard.
            self.finish()
            return
        logger.warning("No worker answered turn %d of %s within %gs (did its worker die?); giving up its response",
                       self.in_flight, self.describe(), self._limit())
        self.in_flight = None
        if not self.closed:
            self.proto.give_up(503, "The application did not respond in time")
            self.gone()
        self.pump()
