"""A request body on its way to the layer, in order, at the pace the application reads it.

The body of a large request goes to its ``?`` body channel in chunks. The
application may read it slower than the client sends it (or not at all
until a worker is free), so the channel can fill: a chunk it refuses is
not an error but backpressure. :class:`BodyStream` therefore keeps one
chunk in flight at a time (so a refused one can be tried again without
a later one overtaking it), retries a refused one with growing pauses on
the reactor's clock (never blocking a sender thread, which other
connections share), and pauses reading from the client while more than
``max_pending_bytes`` of the body wait (the HTTP protocol's request body
timeout ends a body that makes no progress at all).

Every chunk goes through the server's one sender, like every other
message; the stream is the sender's *flow* for it, told when the chunk is
done. :class:`ReadGate` keeps a connection's reading paused while any
reason to pause it holds (this one, or pipelined requests waiting).
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IPushProducer

    from .context import ServerContext

logger = logging.getLogger(__name__)

__all__ = ["LAYER", "PIPELINING", "RETRY_FIRST", "RETRY_MOST", "BodyStream", "ReadGate"]

# Why reading from a connection is paused (bits of ReadGate.reasons).
PIPELINING = 1
"""A request is being answered: the pipelined ones behind it wait unread."""
LAYER = 2
"""Too much of a request body waits for the layer."""

RETRY_FIRST = 0.005
"""Seconds before the first retry of a chunk the body channel refused (doubling each time)."""

RETRY_MOST = 0.25
"""The longest pause between retries of a refused chunk."""


class ReadGate:
    """Reading from one client, paused while any of several reasons (``PIPELINING``, ``LAYER``) holds."""

    __slots__ = ("transport", "reasons")

    def __init__(self, transport: IPushProducer) -> None:
        self.transport = transport
        self.reasons = 0

    def pause(self, reason: int) -> None:
        """Stop reading for ``reason`` (no-op if already paused for it)."""
        if not self.reasons:
            self.transport.pauseProducing()
        self.reasons |= reason

    def resume(self, reason: int) -> None:
        """``reason`` no longer holds; read again if no other does."""
        if self.reasons & reason:
            self.reasons &= ~reason
            if not self.reasons:
                self.transport.resumeProducing()


class BodyStream:
    """Sends one request's body chunks to its body channel, one at a time, retrying refusals.

    Args:
        ctx: the server context (sender, layer, reactor, options).
        key: the connection's sender key (its sends keep their order).
        channel: the body channel.
        pause_reading, resume_reading: stop and restart reading from the
            client (while too much of the body waits).
        progressed: called each time a chunk is in the channel.
        failed: called with the exception when a chunk cannot be sent for a
            reason other than a full channel.
    """

    def __init__(self, ctx: ServerContext, key: int, channel: str, pause_reading: Callable[[], object],
                 resume_reading: Callable[[], object], progressed: Callable[[], object],
                 failed: Callable[[BaseException], object]) -> None:
        self.ctx = ctx
        self.key = key
        self.channel = channel
        self.limit = ctx.config.max_pending_bytes
        self.pause_reading = pause_reading
        self.resume_reading = resume_reading
        self.progressed = progressed
        self.failed = failed
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.queued_bytes = 0
        self.paused = False
        self.closed = False
        self.in_flight = False
        self._refusal: BaseException | None = None
        self._retry: IDelayedCall | None = None
        self._delay = RETRY_FIRST
        self._pumping = False

    def push(self, content: bytes, last: bool) -> None:
        """Queue the next chunk (``last``: the body ends with it)."""
        self.queue.append({"content": content, "closed": False, "more_content": not last})
        self.queued_bytes += len(content)
        if not self.paused and self.queued_bytes > self.limit:
            self.paused = True
            self.pause_reading()
        self._pump()

    def close(self) -> None:
        """The request is over: drop what is unsent (the caller tells the application)."""
        self.closed = True
        self.queue.clear()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _pump(self) -> None:
        # A loop, not recursion: with inline sends each send completes (and asks for the next) at once.
        if self._pumping:
            return
        self._pumping = True
        try:
            while self.queue and not self.in_flight and not self.closed and self._retry is None:
                self.in_flight = True
                self.ctx.sender.send(self.key, self.channel, self.queue[0], self._refused, flow=self)
        finally:
            self._pumping = False

    def _refused(self, exc: BaseException) -> None:
        # Called before finished()/finished_here() for the same chunk (both on the reactor thread).
        self._refusal = exc

    # -- the sender's flow interface --------------------------------------------------

    def finished(self) -> None:
        """The chunk in flight is done (sender thread): continue in the reactor thread."""
        self.ctx.reactor.callFromThread(self._done)

    def finished_here(self) -> None:
        """The chunk in flight is done (inline send, reactor thread)."""
        self._done()

    def _done(self) -> None:
        self.in_flight = False
        exc, self._refusal = self._refusal, None
        if self.closed:
            return
        if exc is None:
            chunk = self.queue.popleft()
            self.queued_bytes -= len(chunk["content"])
            self._delay = RETRY_FIRST
            self.progressed()
            if self.paused and self.queued_bytes <= self.limit // 2:
                self.paused = False
                self.resume_reading()
            self._pump()
        elif isinstance(exc, self.ctx.layer.ChannelFull):
            # The application reads slower than the client sends: try again shortly, keep the order.
            self._retry = self.ctx.reactor.callLater(self._delay, self._retry_now)
            self._delay = min(self._delay * 2, RETRY_MOST)
        else:
            self.failed(exc)

    def _retry_now(self) -> None:
        self._retry = None
        self._pump()
