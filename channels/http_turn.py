"""One event of an HTTP request served by a Channels 2-4 consumer (``AsyncHttpConsumer``) on a worker.

An HTTP request runs as a WebSocket connection does (see :mod:`channels.turns`):
the interface server holds the connection and the request's **state**,
and forwards its events to the workers one at a time:

* turn 0 is the ``http.request`` message itself (the body travels in it,
  or on its ``body_channel``, read when the consumer asks for it);
* while the response is open, each typed event sent to the consumer's
  ``channel_name`` (``group_send``, ``channel_layer.send``) goes to a
  worker on :data:`HTTP_EVENT_CHANNEL` as ``{"reply_channel", "path",
  "turn", "state", "event"}``;
* a client gone before the response completed goes as ``http.disconnect``
  with ``turn`` and ``state``, and the consumer's ``disconnect()`` runs.

What the consumer sends goes back on the reply channel as 1.x response
messages (``{status, headers, content, more_content}``, then
``{content, more_content}``) inside ``{"replies": [...]}``, at the
handler's next suspension point (an ``await`` that waits) or when it
returns, whichever comes first -- so a handler streaming over time
reaches the client chunk by chunk. Each turn ends with one message
carrying ``handled`` (the turn's number) and either ``state`` (the
response stays open: the next event may come) or ``end: true`` (the
consumer is done: no further event or disconnect).

The state holds the scope, the attributes kept between events (msgpack,
as for WebSocket consumers) and how far the response has got: nothing
sent, a response head held until its first body (ASGI sends no head
without a body), or started.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

from .exceptions import RequestAborted, RequestTimeout
from .turns import Message, Scope, Turn, TurnCancelled, connection_scope, pack_kept_state

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .layers import AsyncChannelLayer

logger = logging.getLogger(__name__)

__all__ = ["HTTP_EVENT_CHANNEL", "HttpTurn", "scope_from_request"]

HTTP_EVENT_CHANNEL = "http.event"
"""Where the interface server forwards typed events sent to an open HTTP response's ``channel_name``."""

STARTED = True
"""The response progress of a request whose head has gone out (what the state carries)."""

BODY_TIMEOUT = 60.0
"""Seconds to wait for each chunk of a request body on its body channel (as the view path's ``AsgiRequest``)."""


def _plain(status: int, text: bytes) -> Message:
    return {"status": status, "headers": [[b"content-type", b"text/plain; charset=utf-8"]], "content": text,
            "more_content": False}


INTERNAL_ERROR = _plain(500, b"Internal Server Error")
NOT_FOUND = _plain(404, b"Not Found")
BODY_TIMED_OUT = _plain(408, b"Request Timeout (the request body stopped arriving)")


def scope_from_request(content: Message) -> Scope:
    """Return the base HTTP scope of a request from its ``http.request`` message.

    What the routers and middleware add (``url_route``, ``cookies``,
    ``session``, ``user``) is added again on every turn.
    """
    scope = connection_scope("http", content, "http", content.get("http_version") or "1.1")
    scope["method"] = content.get("method") or "GET"
    return scope


def _checked_head(message: Message) -> Message:
    """Return the 1.x head of an ``http.response.start`` message.

    Raises:
        ValueError: the status is not an int from 100 to 999.
        TypeError: a header is not a pair of bytes.
    """
    status = message.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"http.response.start needs an int 'status' from 100 to 999, not {status!r}")
    headers = []
    for pair in message.get("headers") or ():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(p, bytes) for p in pair):
            raise TypeError(f"response headers must be (name, value) pairs of bytes, not {pair!r}")
        headers.append([pair[0], pair[1]])
    return {"status": status, "headers": headers}


class HttpTurn(Turn):
    """One turn of an HTTP request: collects the consumer's response messages and sends them as they come.

    Args (besides :class:`~channels.turns.Turn`'s):
        sink: sends one message to the request's reply channel.
        response: the response's progress from the state: None (nothing
            sent), a held head (a dict), or :data:`STARTED`.
        body_channel: the request's body channel, read when the consumer
            first asks for the event (so a request the routing hands to
            Django's views leaves it to them).
        body_timeout: seconds to wait for each chunk on ``body_channel``.

    Attributes:
        complete: the consumer has sent the response's last body message.
        ended: the consumer is done with the request (stopped, failed, or
            its response is complete): the interface server sends no more.
    """

    __slots__ = ("sink", "body_channel", "body_timeout", "held", "started", "complete", "pending", "head_out",
                 "scheduled", "answered", "flush_error", "task")

    def __init__(self, event: Message, channel_name: str, layer: AsyncChannelLayer | None,
                 attrs: dict[str, Any] | None, executor: ThreadPoolExecutor | None,
                 description: str | tuple[Any, Any], sink: Callable[[Message], None], response: Any = None,
                 body_channel: str | None = None, body_timeout: float = BODY_TIMEOUT) -> None:
        super().__init__(event, channel_name, layer, attrs, executor, description)
        self.sink = sink
        self.body_channel = body_channel
        self.body_timeout = body_timeout
        self.held: Message | None = response if isinstance(response, dict) else None
        self.started = response is STARTED
        self.head_out = self.started  # the head has left this worker: too late for a 500
        self.complete = False
        self.pending: list[Message] = []
        self.scheduled = False
        self.answered = False
        self.flush_error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None  # the turn's task, to tell a handler waiting from one returning

    # -- what the consumer receives ----------------------------------------------------

    def take_event(self) -> Message:
        """Return the event; for the request, with its whole body (read from the body channel if it has one).

        Raises:
            TurnCancelled: the body stopped arriving (answered 408) or the
                client went away while sending it (nothing to answer).
        """
        try:
            self.task = asyncio.current_task()
        except RuntimeError:
            pass  # no event loop: a test calling it directly
        channel = self.body_channel
        if channel is not None:
            self.body_channel = None
            from .handler import read_body_channel

            try:
                body = read_body_channel(self.layer.backend, channel, self.event.get("body") or b"",
                                         self.body_timeout)
            except RequestTimeout as exc:
                logger.info("%s; answering 408 to %s", exc, self.description)
                self.pending = [BODY_TIMED_OUT]
                raise TurnCancelled(str(exc)) from None
            except RequestAborted as exc:
                logger.info("%s (%s)", exc, self.description)
                raise TurnCancelled(str(exc)) from None
            self.event = {"type": "http.request", "body": body, "more_body": False}
        return self.event

    # -- what the consumer sends -------------------------------------------------------

    def collect(self, message: Message) -> None:
        """Take one ASGI message the consumer sent; it leaves at the next suspension point or the turn's end.

        Raises:
            ValueError: not ``http.response.start``/``http.response.body``,
                or a bad status.
            TypeError: a body that is not bytes, a header that is not a pair of bytes.
            RuntimeError: out of order (a body before the head, a second
                head, anything after the last body).
        """
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started or self.held is not None:
                raise RuntimeError(f"http.response.start sent twice for {self.description}: the response has "
                                   "already started")
            self.held = _checked_head(message)
            return
        if kind != "http.response.body":
            raise ValueError(f"An HTTP consumer cannot send a {kind!r} message (expected http.response.start or "
                             "http.response.body)")
        if self.complete:
            raise RuntimeError(f"http.response.body sent for {self.description} after its last one (more_body=False)")
        body = message.get("body", b"")
        if not isinstance(body, bytes):
            raise TypeError(f"http.response.body's body must be bytes, not {type(body).__name__}")
        more = bool(message.get("more_body", False))
        held = self.held
        if held is not None:
            out: Message = {**held, "content": body, "more_content": more}
            self.held = None
            self.started = True
        elif not self.started:
            raise RuntimeError(f"http.response.body sent for {self.description} before http.response.start")
        else:
            out = {"content": body, "more_content": more}
        self.complete = not more
        self.pending.append(out)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self.scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous handler in the worker's thread: its output goes when it returns
        self.scheduled = True
        loop.call_soon(self._flush_if_waiting)

    def _flush_if_waiting(self) -> None:
        # The event loop runs this once the handler waits -- or once the turn's task has finished, just before
        # the loop stops: then the output goes with the turn's answer, one message instead of two.
        self.scheduled = False
        task = self.task
        if task is None or not task.done():
            self.flush()

    def flush(self) -> None:
        """Send what the consumer sent since the last flush (no-op once the turn has answered)."""
        self.scheduled = False
        pending = self.pending
        if self.answered or not pending or self.flush_error is not None:
            return
        self.pending = []
        try:
            self.sink({"replies": pending})
        except Exception as exc:
            # Called back by the event loop: nothing above to raise to. The answer raises it again.
            self.flush_error = exc
            logger.warning("Could not send the response of %s to its interface server: %s", self.description, exc)
            return
        if not self.head_out:
            self.head_out = any("status" in reply for reply in pending)

    # -- the turn's end ------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """The consumer is done with the request (see the class's attributes)."""
        return self.stop or self.failed or self.complete

    def response_state(self) -> Any:
        """Return the response's progress for the state: None, the held head, or :data:`STARTED`."""
        return STARTED if self.started else self.held

    def answer(self, number: int, state: bytes | None) -> None:
        """Send the turn's answer: what is still pending, ``handled`` and the state (or ``end``).

        Raises:
            Exception: what sending a flush or the answer raised (the layer's).
        """
        self.answered = True
        if self.flush_error is not None:
            raise self.flush_error
        if self.ended and self.complete and not self.pending:
            return  # the response went out whole: the interface server has already forgotten the request
        message: Message = {"replies": self.pending, "handled": number}
        if self.ended:
            message["end"] = True
        else:
            message["state"] = state
        self.pending = []
        self.sink(message)

    def conclude(self, scope_base: Scope, number: int) -> bytes | None:
        """End turn ``number``: send its answer; return the state to keep (None once the consumer is done).

        A consumer that stopped with its response incomplete failed: it
        is logged, and the request gets a 500 (or its response is cut short).
        """
        owner = type(self.consumer).__qualname__ if self.consumer is not None else "The application"
        if self.stop and not self.complete and not self.failed:
            self.failed = True
            logger.error("%s stopped before completing its response; %s", owner, self.fail())
        state = None
        if not self.ended:
            state = pack_kept_state(owner, scope_base, self.attrs, self.response_state())
        self.answer(number, state)
        return state

    def serve_with_views(self, handler: Any) -> None:
        """The routing reached Django's ASGI handler: the worker serves the request with its view path."""
        self.view = handler

    def refuse(self) -> str:
        """Answer 404 (no route matched the path); return what was done, for the log."""
        self.pending = [NOT_FOUND]
        self.complete = True
        return f"answering 404 to {self.description}"

    def fail(self) -> str:
        """Answer 500, or abort a response whose head has gone; return what was done, for the log.

        What the failed handler sent that has not left the worker is
        dropped. A 500 head after a started response makes the interface
        server abort it (the client sees it cut short).
        """
        if isinstance(self.error, TurnCancelled):
            self.complete = True
            return ""
        if self.complete:
            return f"its response to {self.description} was already complete"
        self.pending = [INTERNAL_ERROR]
        self.complete = True
        if self.head_out:
            return f"aborting the response to {self.description}"
        return f"answering 500 to {self.description}"
