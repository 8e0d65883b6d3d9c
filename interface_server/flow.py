"""Flow control for one connection, both ways, on Twisted's producer/consumer interfaces.

* **Outbound** (:class:`OutboundBuffer`): a push producer registered on the
  connection's transport. The transport pauses it when its own send buffer
  is full (the peer reads slower than the application writes) and resumes
  it once the buffer has drained. Whatever the connection writes while it
  is paused is counted; past ``limit`` bytes the connection must be closed,
  so one client that never reads cannot make the server hold an unbounded
  backlog for it.
  A client that leaves the buffer full for ``stall_timeout`` seconds (it
  reads nothing, or too little for the buffer ever to drain) is reported
  through ``on_stall``, so a response smaller than the limit cannot hold a
  connection open for ever either.
* **Inbound** (:class:`InboundFlow`): counts a connection's messages still
  waiting to be sent to the channel layer (sender threads send them, see
  :mod:`interface_server.sending`). While too many, or too many bytes, are
  waiting, reading from the connection pauses (``transport.pauseProducing``),
  and it resumes once they have drained, so a client that sends faster than
  the layer takes its messages is slowed down instead of queued without
  bound.

Neither class knows about WebSockets; the protocol wires them up.
"""

from __future__ import annotations

import collections
import logging
import socket
from typing import Any, Callable, Protocol, Sequence

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from asgi_backends.sockets import plain_socket, send_now

logger = logging.getLogger(__name__)

__all__ = ["InboundFlow", "OutboundBuffer"]


class Consumer(Protocol):
    """What :class:`OutboundBuffer` needs of a transport (Twisted's TCP and TLS ones, StringTransport)."""

    disconnecting: bool

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Sequence[bytes]) -> None: ...

    def registerProducer(self, producer: Any, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...


@implementer(IPushProducer)
class OutboundBuffer:
    """A connection's writes, and what it writes while its transport's send buffer is full.

    :meth:`attach` registers it on the transport as a streaming producer;
    every write goes through :meth:`write` or :meth:`write_sequence`, after
    :meth:`add` has said whether it fits. The transport holds up to its own
    buffer size (64 KiB for TCP) plus the write that filled it before it
    pauses the producer; what is written after that is what :attr:`pending`
    counts.

    **Writing straight to the socket.** Twisted buffers every write, asks
    the reactor to hear when the socket can be written (one ``epoll_ctl``),
    writes on the next turn of the loop and stops listening (another). For
    a server writing small frames to many sockets those steps cost more
    than the ``send`` itself. So on a plain TCP or Unix socket a write is
    sent at once, and only what the kernel does not take is handed to the
    transport. From then on every write goes through the transport, in
    order, until it says its buffer has drained (it resumes this producer,
    which it does once it has paused it); a connection whose backlog never
    reached the pause mark stays on the transport's path, which is as
    correct, only slower.

    **Closing.** Twisted does not finish a ``loseConnection`` while a paused
    producer is registered: when the client has read everything it resumes
    the producer instead, and the connection would stay open for ever. So
    when the transport resumes this buffer while the connection is closing,
    the buffer unregisters itself and the close completes.

    Args:
        limit: most bytes that may be written while paused; one more and
            :meth:`add` reports an overflow.
        clock: the reactor (``callLater``) that times a stall; with
            ``stall_timeout``.
        stall_timeout: seconds the transport may stay paused (its send
            buffer never draining) before ``on_stall`` is called; ``None``
            waits for ever.
        on_stall: called once, in the reactor thread, when a pause has lasted
            ``stall_timeout``.
    """

    __slots__ = ("limit", "paused", "pending", "clock", "stall_timeout", "on_stall", "_stall", "transport", "socket",
                 "held")

    def __init__(self, limit: int, clock: Any = None, stall_timeout: float | None = None,
                 on_stall: Callable[[], object] | None = None) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive number of bytes, not {limit!r}")
        if stall_timeout is not None and (clock is None or on_stall is None):
            raise ValueError("a stall_timeout needs a clock and an on_stall callback")
        self.limit = limit
        self.paused = False
        self.pending = 0
        self.clock = clock
        self.stall_timeout = stall_timeout
        self.on_stall = on_stall
        self._stall: Any = None
        self.transport: Consumer | None = None
        # The socket, while writes may go straight to it (a plain one, the connection not closing).
        self.socket: socket.socket | None = None
        # Bytes were handed to the transport and it has not said it has sent them all.
        self.held = False

    def attach(self, transport: Consumer) -> None:
        """Register on ``transport`` as its producer; write straight to its socket if it is a plain one."""
        self.transport = transport
        self.socket = plain_socket(transport)
        transport.registerProducer(self, True)

    def detach(self) -> None:
        """Stop being the transport's producer (the connection goes on under another protocol)."""
        self.socket = None
        self._cancel_stall()
        self.transport.unregisterProducer()

    def inherit(self, before: OutboundBuffer) -> None:
        """Take over from ``before``, the detached buffer of the connection's previous protocol.

        An HTTP connection upgraded to a WebSocket: what the transport still
        holds of the HTTP side must be sent before anything written here.
        """
        self.held = before.held
        if before.paused:
            self.pauseProducing()

    def hold(self) -> None:
        """Bytes go to the transport past this buffer (Autobahn's own queued writes): from now on write through it.

        Writes keep going through the transport until it reports that it
        has drained (which it does once it has paused this producer).
        """
        self.held = True

    def add(self, size: int) -> bool:
        """Account for ``size`` bytes about to be written.

        Returns:
            True if the connection now holds more than :attr:`limit` bytes
            beyond its transport's buffer (and should be closed).
        """
        if not self.paused:
            return False
        self.pending += size
        return self.pending > self.limit

    def write(self, data: bytes) -> None:
        """Write ``data``: to the socket if the transport holds nothing of ours, else through the transport."""
        sock = self.socket
        if sock is not None and not self.held:
            data = send_now(sock, data)
            if not data:
                return
            self.held = True
        self.transport.write(data)

    def write_sequence(self, parts: Sequence[bytes]) -> None:
        """Write ``parts`` in order, as :meth:`write` does (one system call for all of them)."""
        sock = self.socket
        if sock is not None and not self.held:
            try:
                sent = sock.sendmsg(parts)
            except OSError:
                sent = 0
            if sent == sum(map(len, parts)):
                return
            self.held = True
            self.transport.write(b"".join(parts)[sent:])
            return
        self.transport.writeSequence(parts)

    def close(self) -> None:
        """Close the connection once what is written has been sent (the transport's ``loseConnection``)."""
        self.socket = None
        self.transport.loseConnection()

    def abort(self) -> None:
        """Close the connection at once, discarding what is unsent (the transport's ``abortConnection``)."""
        self.socket = None
        self.transport.abortConnection()

    # -- IPushProducer, called by the transport ------------------------------

    def pauseProducing(self) -> None:
        """The transport's send buffer is full: count from here (called again on every later write)."""
        if not self.paused:
            self.paused = True
            self.pending = 0
            if self.stall_timeout is not None:
                self._stall = self.clock.callLater(self.stall_timeout, self._stalled)

    def resumeProducing(self) -> None:
        """The transport's send buffer has drained: nothing is held back any more."""
        self.paused = False
        self.pending = 0
        self.held = False
        self._cancel_stall()
        transport = self.transport
        if transport is not None and transport.disconnecting:
            transport.unregisterProducer()  # else Twisted would wait for this producer and never close

    def stopProducing(self) -> None:
        """The connection is gone; nothing more will be written."""
        self.socket = None
        self.paused = False
        self.pending = 0
        self._cancel_stall()

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            if self._stall.active():
                self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        if self.paused and self.on_stall is not None:
            self.on_stall()


class InboundFlow:
    """A connection's messages on their way to the layer; pauses reading while too many are.

    The reactor thread calls :meth:`add` for every message it hands to the
    sender; the sender thread serving the connection calls :meth:`finished`
    once each has been sent (or has failed for good). Each counter has one
    writer, so no lock is needed: the reactor's side is :attr:`queued` and
    its byte sizes, the sender's is :attr:`done`.

    Args:
        transport: the connection's transport (``pauseProducing`` /
            ``resumeProducing`` stop and restart reading from it).
        reactor: where :meth:`finished` hands the wake-up (``callFromThread``).
        max_messages: reading pauses once this many messages are waiting.
        max_bytes: reading pauses once the waiting messages hold this many
            payload bytes.

    Reading resumes once at most half of each is waiting, so a busy
    connection does not flip between paused and reading on every message.
    """

    __slots__ = ("transport", "reactor", "max_messages", "max_bytes", "queued", "done", "sizes", "queued_bytes",
                 "done_bytes", "paused", "closed")

    def __init__(self, transport: Any, reactor: Any, max_messages: int, max_bytes: int) -> None:
        if not isinstance(max_messages, int) or max_messages < 1:
            raise ValueError(f"max_messages must be a positive integer, not {max_messages!r}")
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self.transport = transport
        self.reactor = reactor
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.queued = 0
        self.done = 0
        # Sizes of the messages not yet finished, oldest first: appended by the
        # reactor, popped by the sender (deque appends and pops are atomic).
        # Made by the first add (before the sender can see a message): an empty
        # deque is 760 bytes, and most connections of a big server are idle.
        self.sizes: collections.deque[int] | None = None
        self.queued_bytes = 0
        self.done_bytes = 0
        self.paused = False
        self.closed = False

    @property
    def waiting(self) -> int:
        """Messages handed to the sender and not yet finished."""
        return self.queued - self.done

    @property
    def waiting_bytes(self) -> int:
        """Payload bytes of the messages not yet finished."""
        return self.queued_bytes - self.done_bytes

    def add(self, size: int) -> None:
        """Count one message of ``size`` payload bytes handed to the sender (reactor thread).

        Pauses reading from the transport if too much is now waiting.
        """
        self.queued += 1
        self.queued_bytes += size
        sizes = self.sizes
        if sizes is None:
            sizes = self.sizes = collections.deque()
        sizes.append(size)
        if not self.paused and not self.closed and (
                self.queued - self.done >= self.max_messages or self.queued_bytes - self.done_bytes >= self.max_bytes):
            self.paused = True
            self.transport.pauseProducing()
            # The sender may have finished everything before it could see ``paused``.
            self.drained()

    def finished(self) -> None:
        """Count one message as sent or failed for good (the sender's thread, oldest message first)."""
        try:
            self.done_bytes += self.sizes.popleft()
        except (IndexError, AttributeError):  # more finished than added: a caller's bug, not worth a crash
            logger.debug("InboundFlow.finished called more often than add")
        self.done += 1
        if self.paused and self._below_resume_mark():
            self.reactor.callFromThread(self.drained)

    def finished_here(self) -> None:
        """Like :meth:`finished`, in the reactor thread (inline sends)."""
        try:
            self.done_bytes += self.sizes.popleft()
        except (IndexError, AttributeError):
            logger.debug("InboundFlow.finished_here called more often than add")
        self.done += 1
        if self.paused:
            self.drained()

    def drained(self) -> None:
        """Resume reading if paused and enough has drained (reactor thread; safe to call twice)."""
        if self.paused and self._below_resume_mark():
            self.paused = False
            if not self.closed:
                self.transport.resumeProducing()

    def close(self) -> None:
        """The connection is closing: never pause or resume its transport again."""
        self.closed = True

    def _below_resume_mark(self) -> bool:
        return (self.queued - self.done <= self.max_messages // 2
                and self.queued_bytes - self.done_bytes <= self.max_bytes // 2)
