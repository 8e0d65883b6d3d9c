"""Connections to the Redis servers behind a layer: hosts, shards, hashing.

A :class:`Shard` is one Redis server (or one Sentinel-managed service): a
connection per thread for the hot path plus a pool for the rest. It runs
the layer's Lua scripts by SHA, reloading a script when Redis answers
``NOSCRIPT`` (after a restart), and turns connection failures into
:class:`~asgi_backends.exceptions.LayerUnavailable`. A command is never
sent twice unless it provably did not reach Redis the first time: a reply
lost after the write is raised (``may_have_run``), not retried, because a
resent ``send`` would queue its message twice.
A :class:`HashRing` maps channel names to shards by consistent hashing, so
adding a host moves only a share of the channels.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import select
import socket
import ssl
import threading
import weakref
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import parse_qs, urlparse

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..exceptions import LayerUnavailable
from .scripts import SCRIPTS

if TYPE_CHECKING:
    from .resp import RedisAddress

try:  # hiredis packs commands in C; redis-py falls back to Python
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is optional
    _hiredis_pack = None

logger = logging.getLogger(__name__)


def _pack_args(args: Sequence[Any]) -> bytes:
    return _hiredis_pack(tuple(args))


_pack = _pack_args if _hiredis_pack is not None else None

UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError)

_PLAIN_READ = Connection.read_response  # TCP, TLS and Unix socket connections all read with it

try:  # what redis-py's hiredis reader returns for "not enough data yet": its own object since 8.0
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH
except ImportError:  # older redis-py: hiredis's default, False
    _NOT_ENOUGH = False


def describe_host(host: Any) -> str:
    """Return a stable label for a ``hosts`` entry (also its place on the hash ring)."""
    if isinstance(host, str):
        parsed = urlparse(host)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis host URL {host!r} must start with redis://, rediss:// or unix://")
        if parsed.scheme == "unix":
            db = parse_qs(parsed.query).get("db", ["0"])[0]
            return f"unix:{parsed.path}/{db}"
        db = parsed.path.strip("/") or "0"
        return f"{parsed.hostname}:{parsed.port or 6379}/{db}"
    if isinstance(host, (tuple, list)) and len(host) == 2 and isinstance(host[0], str) and isinstance(host[1], int):
        return f"{host[0]}:{host[1]}/0"
    raise TypeError(f"Each Redis host must be a URL or a (host, port) tuple, not {host!r}")

def make_retry() -> Retry:
    """One immediate retry, on connection errors only, for the pooled client.

    It replaces a pooled connection that died with a Redis restart. redis-py
    retries a command whose reply was lost too, so only idempotent commands
    go through the pooled client (``flush``'s ``SCAN``/``UNLINK``); scripts
    and sends run on the per-thread connections (:meth:`Shard._call`),
    which never send a written command again.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def make_pool(host: Any, pool_size: int, connection_kwargs: dict[str, Any]) -> redis.ConnectionPool:
    """Build a blocking connection pool for one ``hosts`` entry.

    The pool waits (up to the socket timeout) for a free connection instead
    of failing, so a burst of concurrent receives cannot exhaust it.
    """
    options = {
        "retry": make_retry(),
        "socket_connect_timeout": 2.0,
        # RESP2, which the layer's replies are read in with hiredis directly; redis-py 8 defaults to
        # RESP3, whose replies go through its own per-call wrapping (push messages the layer never uses).
        "protocol": 2,
        **connection_kwargs,
        "decode_responses": False,
    }
    if isinstance(host, str):
        return redis.BlockingConnectionPool.from_url(
            host, max_connections=pool_size, timeout=options.get("socket_timeout"), **options
        )
    return redis.BlockingConnectionPool(
        host=host[0], port=host[1], max_connections=pool_size, timeout=options.get("socket_timeout"), **options
    )

class ReplyLost(RedisConnectionError):
    """The connection broke after a command was written: Redis may have run it, so it is not sent again."""


def _closed_by_server(sock: socket.socket) -> bool:
    """True if an idle connection has been closed by Redis (or holds bytes nobody asked for).

    Redis closes its clients' sockets when it restarts; the end of stream
    is then waiting on ours. Looking before writing (one non-blocking
    peek) tells a dead connection from a live one while resending is still
    safe: nothing has been sent yet.
    """
    if isinstance(sock, ssl.SSLSocket):
        return False  # no MSG_PEEK on TLS: a dead one fails at the write or the read instead
    # poll, not a non-blocking recv: a socket with a timeout waits in recv whatever its flags.
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False  # nothing waiting: the connection is in step
    try:
        sock.recv(1, socket.MSG_PEEK)
    except OSError:
        pass
    return True  # end of stream, a reset, or unexpected bytes: not fit to carry a command


def _send(connection: Connection, packed: Any) -> None:
    """Write a packed command, (re)connecting first when the connection is closed or dead."""
    sock = connection._sock
    if sock is not None and _closed_by_server(sock):
        connection.disconnect()
        sock = None
    if sock is None:
        # Connect explicitly: Sentinel-managed connections look up the
        # current master in connect().
        connection.connect()
    connection.send_packed_command(packed, check_health=False)


_SHARDS: weakref.WeakSet[Shard] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for shard in list(_SHARDS):
        shard._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Shard:
    """One Redis server of the layer.

    The hot path (scripts, pops) runs on one connection per thread, speaking
    to the socket directly: no pool lock, no per-command bookkeeping, and a
    burst of threads can never exhaust anything. The ``client`` and its
    pool serve the rest (flush, cross-shard pops).

    Args:
        client: a ``redis.Redis`` (returning bytes) for the server.
        label: a name for messages and for the hash ring.
        address: how the reactor's client reaches the server, or None if it
            cannot (see :func:`~.resp.reactor_address`).
    """

    def __init__(self, client: redis.Redis, label: str, address: RedisAddress | None = None) -> None:
        self.client = client
        self.address = address
        self.pool = client.connection_pool
        self.label = label
        self._local = threading.local()
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        _SHARDS.add(self)

    def _forget_connections(self) -> None:
        """In a forked child: never share the parent's sockets."""
        self._local = threading.local()
        self._connections = weakref.WeakSet()

    def _connection(self) -> Connection:
        try:
            return self._local.connection
        except AttributeError:
            connection = self.pool.connection_class(**self.pool.connection_kwargs)
            self._local.connection = connection
            self._connections.add(connection)
            return connection

    def _call(self, args: Sequence[Any]) -> Any:
        """Send one command on this thread's connection and return its reply.

        At most once: a command is sent again only when it provably never
        reached Redis (the connect or the write failed). Once it was
        written, a broken connection raises :class:`ReplyLost` instead,
        because Redis may already have run it.
        """
        connection = self._connection()
        packed = [_pack(args)] if _pack is not None else connection.pack_command(*args)
        self._write(connection, packed)
        return self._read(connection)

    def _call_many(self, commands: Sequence[Sequence[Any]], errors_in_place: bool = False) -> list[Any]:
        """Send several commands in one write and return their replies, like :meth:`_call`.

        Every reply is read before an error reply is raised (the first), so
        the connection stays in step; with ``errors_in_place`` error
        replies are returned in their places instead.
        """
        connection = self._connection()
        if _pack is not None:
            packed = [b"".join([_pack(args) for args in commands])]
        else:
            packed = connection.pack_commands(commands)
        self._write(connection, packed)
        replies = []
        error: ResponseError | None = None
        for _ in commands:
            try:
                replies.append(self._read(connection))
            except ResponseError as exc:
                replies.append(exc if errors_in_place else None)
                error = error or exc
        if error is not None and not errors_in_place:
            raise error
        return replies

    def _write(self, connection: Connection, packed: Any) -> None:
        """Write packed commands; once, or twice when the first write provably reached nothing."""
        try:
            _send(connection, packed)
        except AuthenticationError:
            connection.disconnect()
            raise  # wrong credentials: not an outage, retrying cannot help
        except RedisConnectionError:
            # Nothing reached Redis whole (a failed write sent at most a
            # prefix of the command): one fresh attempt is safe.
            connection.disconnect()
            try:
                _send(connection, packed)
            except BaseException:
                connection.disconnect()
                raise
        except BaseException:
            connection.disconnect()
            raise

    def _read(self, connection: Connection) -> Any:
        """Read one reply; a broken connection after the write raises :class:`ReplyLost`."""
        try:
            parser = connection._parser
            reader = getattr(parser, "_reader", None)
            if reader is None or connection.protocol in (3, "3") or type(connection).read_response is not _PLAIN_READ:
                # No hiredis; RESP3 (push messages); or a connection class with its own reading
                # (Sentinel's turns READONLY from a demoted master into a reconnect).
                return connection.read_response()
            # redis-py's hiredis parser, without the per-call wrapping of
            # Connection.read_response (which costs more than the parse).
            reply = reader.gets()
            while reply is _NOT_ENOUGH:
                parser.read_from_socket()
                reply = reader.gets()
            if isinstance(reply, (ResponseError, RedisConnectionError)):
                raise reply
            return reply
        except ResponseError:
            raise  # an error reply: the connection is in step and reusable
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            connection.disconnect()
            raise ReplyLost(f"{exc}; the command was sent, so Redis may have run it") from exc
        except BaseException:
            # Interrupted mid-reply: the connection is out of step.
            connection.disconnect()
            raise

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one of the layer's Lua scripts; return its reply.

        Raises:
            LayerUnavailable: Redis cannot be reached.
            redis.AuthenticationError: Redis refused the credentials.
        """
        command = ("EVALSHA", SCRIPTS[script].sha, len(keys), *keys, *args)
        try:
            try:
                return self._call(command)
            except NoScriptError:
                return self._load_and_call(script, command)
        except AuthenticationError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            raise self.unavailable(exc) from exc

    def run_many(self, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]],
                 then: Sequence[Sequence[Any]] = ()) -> list[Any]:
        """Run several of the layer's scripts, ``(script, keys, args)`` each, then the commands ``then``, in one round trip.

        Returns every reply, the scripts' first; an error reply to one of
        ``then`` is returned in its place (a ``redis.ResponseError``). A
        script Redis does not know yet is loaded and its call run again on
        its own (Redis ran none of it), so after what came after it in the
        pipeline; everything else has run once, in order.

        Raises:
            redis.ResponseError: a script failed (the first such reply);
                every other call ran.
            LayerUnavailable: Redis cannot be reached.
            redis.AuthenticationError: Redis refused the credentials.
        """
        commands = [("EVALSHA", SCRIPTS[script].sha, len(keys), *keys, *args) for script, keys, args in calls]
        try:
            replies = self._call_many([*commands, *then], errors_in_place=True)
            error: ResponseError | None = None
            for index, reply in enumerate(replies):
                if index < len(commands) and isinstance(reply, NoScriptError):
                    replies[index] = self._load_and_call(calls[index][0], commands[index])
                elif index < len(commands) and isinstance(reply, ResponseError):
                    error = error or reply
        except AuthenticationError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            raise self.unavailable(exc) from exc
        if error is not None:
            raise error
        return replies

    def _load_and_call(self, script: str, command: Sequence[Any]) -> Any:
        """Load ``script`` (first use, or Redis restarted and lost its script cache), then send its ``EVALSHA`` again."""
        logger.info("Loading Lua script %s into Redis at %s", script, self.label)
        self._call(("SCRIPT", "LOAD", SCRIPTS[script].source))
        return self._call(command)

    def execute(self, *args: Any) -> Any:
        """Run one Redis command; like :meth:`run` for errors."""
        try:
            return self._call(args)
        except AuthenticationError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            raise self.unavailable(exc) from exc

    def execute_many(self, *commands: Sequence[Any]) -> list[Any]:
        """Run several Redis commands in one round trip; return their replies. Like :meth:`run` for errors."""
        try:
            return self._call_many(commands)
        except AuthenticationError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            raise self.unavailable(exc) from exc

    def unavailable(self, exc: Exception) -> LayerUnavailable:
        """Return the error to raise for a failed connection (``may_have_run`` after a lost reply)."""
        if isinstance(exc, ReplyLost):
            return LayerUnavailable(
                f"Redis at {self.label} is unreachable ({exc}); the operation may have completed. "
                "The layer reconnects by itself.", may_have_run=True)
        return LayerUnavailable(
            f"Redis at {self.label} is unreachable ({exc}); the operation did not complete. "
            "The layer reconnects by itself: retry once Redis is back."
        )

    def close(self) -> None:
        """Close every connection (per-thread ones and the pool's)."""
        for connection in list(self._connections):
            connection.disconnect()
        self.pool.disconnect()

    def __repr__(self) -> str:
        return f"<Shard {self.label}>"


class HashRing:
    """Consistent hashing of names onto shards (many points per shard).

    Args:
        shards: the shards; each is placed by its ``label``, so the mapping
            does not depend on the order ``hosts`` are listed in.
        points: points per shard; more gives a more even spread.
    """

    def __init__(self, shards: Sequence[Shard], points: int = 160) -> None:
        if not shards:
            raise ValueError("A Redis channel layer needs at least one host")
        ring = []
        for shard in shards:
            for point in range(points):
                ring.append((self._hash(f"{shard.label}#{point}"), shard))
        ring.sort(key=lambda item: item[0])
        self._keys = [key for key, _ in ring]
        self._shards = [shard for _, shard in ring]
        self._single = shards[0] if len(shards) == 1 else None

    @staticmethod
    def _hash(value: str) -> int:
        return int.from_bytes(hashlib.md5(value.encode("utf-8"), usedforsecurity=False).digest()[:8], "big")

    def shard_for(self, name: str) -> Shard:
        """Return the shard that holds ``name``."""
        if self._single is not None:
            return self._single
        index = bisect.bisect(self._keys, self._hash(name)) % len(self._keys)
        return self._shards[index]
