"""One Redis connection inside the Twisted reactor: commands pipelined, replies parsed in C.

:class:`RespProtocol` writes each request (one or more packed commands) as
it is made and matches replies to requests in order, with ``hiredis``'s
reader, so a reactor turn's requests share one write and one read and
nothing waits for a round trip before the next is sent. Error replies
arrive as values (``hiredis.ReplyError``), not exceptions: a request's
callback sees every reply of the request. A connection that breaks fails
every request still waiting with :class:`~.connection.ReplyLost`, because
Redis may have run it.

:func:`reactor_address` says where and how to connect for a ``hosts`` entry,
or that the reactor cannot (TLS, RESP3, options it does not speak), in which
case the layer is used through its blocking methods instead.
"""

from __future__ import annotations

import collections
import logging
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import hiredis
from redis.connection import UnixDomainSocketConnection, parse_url
from twisted.internet import protocol
from twisted.python.failure import Failure

from ..sockets import plain_socket, send_now
from .connection import ReplyLost

logger = logging.getLogger(__name__)

Replies = list[Any]
"""What a request's callback gets on success: one reply per command, error replies as ``hiredis.ReplyError`` values."""

ReplyCallback = Callable[[Any], None]
"""Called once per request with its :data:`Replies`, or with the exception that ended it."""

# connection_kwargs the reactor's connections honour (or that only concern redis-py's own connections).
_HONOURED = frozenset({
    "password", "username", "db", "client_name", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "socket_keepalive_options", "health_check_interval", "retry_on_timeout",
    "retry_on_error", "retry", "decode_responses", "encoding", "encoding_errors", "single_connection_client",
})


@dataclass(frozen=True)
class RedisAddress:
    """Where one shard's Redis listens and what a new connection must say first.

    Attributes:
        host, port: a TCP address (``path`` is None), or
        path: a Unix socket (``host`` is None).
        db: the database to ``SELECT`` (0: none).
        username, password: for ``AUTH`` (no ``AUTH`` without a password).
        client_name: for ``CLIENT SETNAME``.
        connect_timeout: seconds a connection attempt may take.
        reply_timeout: seconds a request may wait for its reply before the
            connection is dropped (None: for ever).
    """

    host: str | None
    port: int
    path: str | None
    db: int
    username: str | None
    password: str | None
    client_name: str | None
    connect_timeout: float
    reply_timeout: float | None

    def handshake(self) -> list[tuple[Any, ...]]:
        """The commands a new connection sends before any other."""
        commands: list[tuple[Any, ...]] = []
        if self.password is not None:
            commands.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.client_name:
            commands.append(("CLIENT", "SETNAME", self.client_name))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


def reactor_address(host: Any, options: Mapping[str, Any]) -> RedisAddress | None:
    """Return how the reactor reaches ``host`` (a ``hosts`` entry) with ``options``, or None if it cannot.

    ``options`` are the layer's ``connection_kwargs`` (with its socket
    timeout). None for ``rediss://`` and ``ssl=True`` (TLS), ``protocol=3``,
    a custom connection class, or any option the reactor's connections do
    not honour: those hosts keep the blocking client, which honours all
    of redis-py's.
    """
    if isinstance(host, str):
        settings = parse_url(host)
        if settings.pop("connection_class", UnixDomainSocketConnection) is not UnixDomainSocketConnection:
            return None  # rediss://
    elif isinstance(host, (tuple, list)):
        settings = {"host": host[0], "port": host[1]}
    else:
        return None
    merged = {**options, **settings}
    if merged.pop("protocol", 2) not in (2, "2"):
        return None  # RESP3: the reactor's connections speak RESP2, the layer's default
    if any(name not in _HONOURED and name not in ("host", "port", "path") for name in merged):
        return None
    path = merged.get("path")
    timeout = merged.get("socket_timeout")
    return RedisAddress(
        host=None if path else merged.get("host", "localhost"),
        port=int(merged.get("port", 6379)),
        path=path,
        db=int(merged.get("db", 0) or 0),
        username=merged.get("username"),
        password=merged.get("password"),
        client_name=merged.get("client_name"),
        connect_timeout=float(merged.get("socket_connect_timeout") or 2.0),
        reply_timeout=None if timeout is None else float(timeout),
    )


class RespProtocol(protocol.Protocol):
    """A pipelined RESP2 connection: requests written at once, replies handed back in order.

    On a plain TCP or Unix socket a request is sent straight to the socket
    (see :mod:`asgi_backends.sockets`), and only what the kernel does not
    take goes to the transport. Later requests follow it through the
    transport until every request so far has been answered: Redis has
    then read all that was written, so the transport holds nothing.

    Args:
        reactor: its clock times the replies (:attr:`reply_timeout`).
        reply_timeout: seconds the oldest unanswered request may wait before
            the connection is dropped (None: no limit). A Redis that stops
            answering (paused, or a network gone quiet) then fails its
            requests instead of holding them for ever.
        on_lost: called once, with this protocol, when the connection ends.
        lost_error: makes the exception the unanswered requests get when the
            connection ends, from a :class:`~.connection.ReplyLost`.
    """

    def __init__(self, reactor: Any, reply_timeout: float | None, on_lost: Callable[[RespProtocol], None],
                 lost_error: Callable[[ReplyLost], BaseException] = lambda exc: exc) -> None:
        self.reactor = reactor
        self.lost_error = lost_error
        self.reply_timeout = reply_timeout
        self.on_lost = on_lost
        self.connected_now = False
        self._reader = hiredis.Reader()
        # Per request, oldest first: [callback, replies still to come, replies so far].
        self._waiting: collections.deque[list[Any]] = collections.deque()
        self._progress = 0.0
        self._watchdog: Any = None
        # The socket while requests may be sent straight to it; and whether the transport holds some.
        self._socket: socket.socket | None = None
        self._held = False

    @property
    def outstanding(self) -> int:
        """Requests written and not yet answered in full."""
        return len(self._waiting)

    def connectionMade(self) -> None:
        self.connected_now = True
        self._socket = plain_socket(self.transport)

    def request(self, packed: bytes, count: int, callback: ReplyCallback) -> None:
        """Write ``count`` packed commands; ``callback`` gets their replies (or the error that ended the connection)."""
        if not self._waiting:
            self._progress = self.reactor.seconds()
            if self.reply_timeout is not None and self._watchdog is None:
                self._watchdog = self.reactor.callLater(self.reply_timeout, self._check_progress)
        self._waiting.append([callback, count, []])
        sock = self._socket
        if sock is not None and not self._held:
            packed = send_now(sock, packed)
            if not packed:
                return
            self._held = True
        self.transport.write(packed)

    def dataReceived(self, data: bytes) -> None:
        reader = self._reader
        waiting = self._waiting
        try:
            reader.feed(data)
            reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self._broken(f"Redis sent bytes that are not RESP ({exc})")
            return
        while reply is not False:
            if not waiting:
                self._broken("Redis sent a reply nobody asked for")
                return
            entry = waiting[0]
            entry[2].append(reply)
            entry[1] -= 1
            if entry[1] == 0:
                waiting.popleft()
                try:
                    entry[0](entry[2])
                except Exception:  # a caller's bug must not put the connection out of step
                    logger.exception("Handling a Redis reply failed")
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._broken(f"Redis sent bytes that are not RESP ({exc})")
                return
        if waiting:
            self._progress = self.reactor.seconds()
        else:
            self._held = False  # every request answered: Redis has read every byte written

    def close(self) -> None:
        """Close the connection once what was written has been sent; nothing more goes straight to the socket."""
        self._socket = None
        self.transport.loseConnection()

    def _broken(self, why: str) -> None:
        logger.error("%s; dropping the connection", why)
        self._abort()

    def _abort(self) -> None:
        self._socket = None
        self.transport.abortConnection()

    def _check_progress(self) -> None:
        self._watchdog = None
        if not self._waiting or not self.connected_now:
            return
        waited = self.reactor.seconds() - self._progress
        if waited >= self.reply_timeout:
            logger.warning("Redis did not answer for %.1f s; dropping the connection", waited)
            self._abort()
            return
        self._watchdog = self.reactor.callLater(self.reply_timeout - waited, self._check_progress)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.connected_now = False
        self._socket = None
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        self._watchdog = None
        waiting, self._waiting = self._waiting, collections.deque()
        if waiting:
            error = self.lost_error(
                ReplyLost(f"{reason.getErrorMessage()}; the command was sent, so Redis may have run it"))
        for callback, _, _ in waiting:
            try:
                callback(error)
            except Exception:
                logger.exception("Handling a lost Redis reply failed")
        self.on_lost(self)
