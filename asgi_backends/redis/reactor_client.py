"""The Redis layer's client for the Twisted reactor: sends and reply receives without threads.

An interface server spends most of its time handing messages to the
layer and taking replies from it. Through the blocking methods that takes
sender and receiver threads, and every message crosses between them and
the reactor (a queue, a wake-up, a fight for the GIL). This client runs in
the reactor instead: one pipelined connection per shard for the scripts,
one per shard for the blocking pop of the server's replies, commands packed
and replies parsed by ``hiredis``. It runs the layer's own calls
(:meth:`~.batch.BatchOperations.plan_sends`,
:meth:`~.batch.BatchOperations.pop_command`), so the key layout, capacity,
expiry and encryption rules are the layer's.

The blocking client's guarantees hold:

* **At most once.** A request is written once. A connection that breaks
  after the write fails its requests with ``LayerUnavailable(may_have_run=
  True)``; one that never connected fails them with ``may_have_run=False``.
* **Order.** Requests to a shard are written in the order they are made
  and Redis runs them in that order.
* **Scripts after a restart.** A ``NOSCRIPT`` reply means the script did
  not run. The link then writes nothing new until every request written
  before has answered, loads the scripts and resends the refused requests
  ahead of those held, so nothing overtakes what it followed.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, Callable

import hiredis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from twisted.internet import defer, endpoints
from twisted.internet.abstract import isIPAddress, isIPv6Address

from ..base import Message
from .batch import unknown_command
from .connection import Shard
from .resp import RedisAddress, ReplyCallback, RespProtocol
from .scripts import SCRIPTS

if TYPE_CHECKING:
    from .layer import RedisChannelLayer

logger = logging.getLogger(__name__)

pack = hiredis.pack_command


def reply_error(reply: hiredis.ReplyError) -> ResponseError:
    """The redis-py exception for an error reply (what the blocking client raises for it)."""
    message = str(reply)
    if message.startswith(("NOAUTH", "WRONGPASS", "invalid password", "invalid username")):
        return AuthenticationError(message)
    return ResponseError(message)


class _Request:
    """One request of a link: packed commands, their count, who gets the replies, and its script if it runs one."""

    __slots__ = ("packed", "count", "callback", "script")

    def __init__(self, packed: bytes, count: int, callback: ReplyCallback, script: str | None) -> None:
        self.packed = packed
        self.count = count
        self.callback = callback
        self.script = script


class ShardLink:
    """The reactor's connection to one shard: made on first use, made again on the first use after it broke.

    Args:
        reactor: the reactor (connects, clocks the replies).
        shard: the shard (its label and its ``LayerUnavailable`` wording).
        address: where it listens and what to say first.
        reply_timeout: seconds a request may wait for its reply (None: the
            address's socket timeout).
    """

    def __init__(self, reactor: Any, shard: Shard, address: RedisAddress, reply_timeout: float | None = None) -> None:
        self.reactor = reactor
        self.shard = shard
        self.address = address
        self.reply_timeout = address.reply_timeout if reply_timeout is None else reply_timeout
        self._protocol: RespProtocol | None = None
        self._connecting = False
        # Requests not yet written: made while connecting, or while recovering from NOSCRIPT.
        self._pending: collections.deque[_Request] = collections.deque()
        # NOSCRIPT recovery: refused requests (in reply order) to resend once what was written before has answered.
        self._recovering = False
        self._refused: list[_Request] = []
        self._closed = False

    # -- making requests -------------------------------------------------------------

    def request(self, commands: list[tuple[Any, ...]], callback: ReplyCallback) -> None:
        """Send ``commands`` in one write; ``callback`` gets their replies (error replies as values) or an exception.

        The exception is ``LayerUnavailable`` (``may_have_run`` when the
        commands were written and the connection broke before the replies),
        or ``AuthenticationError`` when Redis refused the credentials.
        """
        packed = b"".join([pack(command) for command in commands])
        self._submit(_Request(packed, len(commands), callback, None))

    def run(self, script: str, keys: tuple[str, ...] | list[str], args: Any, callback: Callable[[Any], None]) -> None:
        """Run one of the layer's Lua scripts; ``callback`` gets its reply, or an exception.

        An error reply becomes redis-py's ``ResponseError`` (as the blocking
        client raises); ``NOSCRIPT`` is handled here.
        """
        found = SCRIPTS[script]

        def answered(replies: Any) -> None:
            if isinstance(replies, BaseException):
                callback(replies)
                return
            reply = replies[0]
            callback(reply_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)

        packed = pack(("EVALSHA", found.sha, len(keys), *keys, *args))
        self._submit(_Request(packed, 1, answered, script))

    def _submit(self, request: _Request) -> None:
        if self._closed:
            request.callback(self.shard.unavailable(RedisConnectionError("the layer's reactor client is closed")))
            return
        protocol = self._protocol
        if protocol is not None and not self._recovering:
            self._write(protocol, request)
            return
        self._pending.append(request)
        if protocol is None and not self._connecting:
            self._connect()

    def _write(self, protocol: RespProtocol, request: _Request) -> None:
        if request.script is None:
            protocol.request(request.packed, request.count, request.callback)
        else:
            protocol.request(request.packed, 1, lambda replies: self._script_answered(request, replies))

    # -- NOSCRIPT: the script cache is empty (a restart, SCRIPT FLUSH) ----------------

    def _script_answered(self, request: _Request, replies: Any) -> None:
        if not isinstance(replies, BaseException):
            reply = replies[0]
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                # Not run. Hold everything new until every request written before has answered.
                self._recovering = True
                self._refused.append(request)
                self._maybe_resend()
                return
        request.callback(replies)
        if self._recovering:
            self._maybe_resend()

    def _maybe_resend(self) -> None:
        protocol = self._protocol
        if protocol is None or protocol.outstanding:
            return
        refused, self._refused = self._refused, []
        held, self._pending = list(self._pending), collections.deque()
        self._recovering = False
        names = sorted({request.script for request in refused if request.script is not None})
        logger.info("Loading Lua script(s) %s into Redis at %s", ", ".join(names), self.shard.label)
        for name in names:
            protocol.request(pack(("SCRIPT", "LOAD", SCRIPTS[name].source)), 1, self._script_loaded)
        for request in refused + held:
            self._write(protocol, request)

    @staticmethod
    def _script_loaded(replies: Any) -> None:
        if not isinstance(replies, BaseException) and isinstance(replies[0], hiredis.ReplyError):
            logger.error("Redis refused to load a Lua script: %s", replies[0])

    # -- the connection --------------------------------------------------------------

    def _endpoint(self) -> Any:
        address = self.address
        if address.path is not None:
            return endpoints.UNIXClientEndpoint(self.reactor, address.path, timeout=address.connect_timeout)
        # An address needs no name lookup (which would run in the reactor's thread pool).
        if isIPAddress(address.host):
            return endpoints.TCP4ClientEndpoint(self.reactor, address.host, address.port, timeout=address.connect_timeout)
        if isIPv6Address(address.host):
            return endpoints.TCP6ClientEndpoint(self.reactor, address.host, address.port, timeout=address.connect_timeout)
        return endpoints.HostnameEndpoint(self.reactor, address.host, address.port, timeout=address.connect_timeout)

    def _connect(self) -> None:
        self._connecting = True
        protocol = RespProtocol(self.reactor, self.reply_timeout, self._lost, self.shard.unavailable)
        try:
            connecting = endpoints.connectProtocol(self._endpoint(), protocol)
        except Exception as exc:  # a bad address fails here, not in the Deferred
            self._connect_failed(exc)
            return
        connecting.addCallbacks(self._connected, lambda failure: self._connect_failed(failure.value))

    def _connected(self, protocol: RespProtocol) -> None:
        handshake = self.address.handshake()
        if not handshake:
            self._ready(protocol)
            return
        # Nothing else is written until the handshake has answered: after a
        # failed SELECT, commands would run in the wrong database.
        packed = b"".join([pack(command) for command in handshake])
        protocol.request(packed, len(handshake), lambda replies: self._handshaken(protocol, replies))

    def _handshaken(self, protocol: RespProtocol, replies: Any) -> None:
        if isinstance(replies, BaseException):
            self._connect_failed(replies)
            return
        errors = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if errors:
            error = reply_error(errors[0])
            logger.error("Redis at %s refused the connection's setup: %s", self.shard.label, error)
            protocol.on_lost = lambda _: None
            protocol.close()
            self._connect_failed(error)
            return
        self._ready(protocol)

    def _ready(self, protocol: RespProtocol) -> None:
        self._connecting = False
        if self._closed or not protocol.connected_now:
            protocol.on_lost = lambda _: None
            if protocol.connected_now:
                protocol.close()
            self._fail_pending(RedisConnectionError("the connection closed as it opened"))
            return
        self._protocol = protocol
        pending, self._pending = self._pending, collections.deque()
        for request in pending:
            self._write(protocol, request)

    def _connect_failed(self, exc: BaseException) -> None:
        self._connecting = False
        self._fail_pending(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        """Fail every request not yet written: none of them reached Redis."""
        if not isinstance(exc, AuthenticationError):
            if not isinstance(exc, RedisConnectionError):
                exc = RedisConnectionError(str(exc) or type(exc).__name__)
            exc = self.shard.unavailable(exc)
        pending, self._pending = self._pending, collections.deque()
        for request in pending:
            request.callback(exc)

    def _lost(self, protocol: RespProtocol) -> None:
        if protocol is self._protocol:
            self._protocol = None
        # What was refused with NOSCRIPT or held behind it never ran.
        refused, self._refused = self._refused, []
        self._recovering = False
        self._pending.extendleft(reversed(refused))
        self._fail_pending(RedisConnectionError("the connection to Redis was lost"))

    def close(self) -> None:
        """Drop the connection; later requests fail with ``LayerUnavailable``."""
        self._closed = True
        protocol = self._protocol
        if protocol is not None and protocol.connected_now:
            protocol.close()


class ReactorRedisClient:
    """A :class:`~.layer.RedisChannelLayer`'s sends and reply receives, in the reactor.

    Made by :meth:`~.layer.RedisChannelLayer.reactor_client`; satisfies
    :class:`~asgi_backends.base.ReactorLayerClient`. Call every method in
    the reactor thread.
    """

    def __init__(self, layer: RedisChannelLayer, reactor: Any) -> None:
        self.layer = layer
        self.reactor = reactor
        self._links: dict[Shard, ShardLink] = {}
        self._pop_links: dict[Shard, ShardLink] = {}

    def _link(self, shard: Shard) -> ShardLink:
        link = self._links.get(shard)
        if link is None:
            link = self._links[shard] = ShardLink(self.reactor, shard, self._address(shard))
        return link

    @staticmethod
    def _address(shard: Shard) -> RedisAddress:
        if shard.address is None:
            raise ValueError(f"Redis at {shard.label} cannot be reached from the reactor (TLS, Sentinel or RESP3)")
        return shard.address

    # -- sending ---------------------------------------------------------------------

    def send_batch(self, items: list[tuple[str, Message]]) -> defer.Deferred:
        """Send messages as :meth:`~.batch.BatchOperations.send_batch` does, without blocking.

        Returns:
            a Deferred firing with one result per item: None, or the
            exception it met (``ChannelFull``, ``MessageTooLarge``,
            ``TypeError``, ``LayerUnavailable`` when its shard could not be
            reached, ``ResponseError`` for an error reply). It never fails.

        Raises:
            TypeError: not a list of ``(channel, message)`` pairs, or a bad
                channel name; nothing sent.
        """
        layer = self.layer
        items = layer.valid_send_items(items)
        results, calls = layer.plan_sends(items)
        done: defer.Deferred = defer.Deferred()
        if not calls:
            done.callback(results)
            return done
        remaining = [len(calls)]

        def answered(call: Any, reply: Any) -> None:
            if isinstance(reply, BaseException):
                for index in call.indexes:
                    results[index] = reply
            else:
                layer.collect_sends(items, results, call, reply)
            remaining[0] -= 1
            if not remaining[0]:
                done.callback(results)

        for call in calls:
            self._link(call.shard).run(call.script, call.keys, call.args,
                                       lambda reply, call=call: answered(call, reply))
        return done

    # -- receiving the server's replies ---------------------------------------------

    def receive_replies(self, prefix: str, max_messages: int) -> defer.Deferred:
        """Wait (up to the layer's ``blocking_timeout``) for messages on a process-specific prefix.

        As :meth:`~.batch.BatchOperations.receive_batch` with
        ``block=True`` on one prefix: one round trip with the server's
        ``TIME``, expired entries dropped, a burst taken whole.

        Returns:
            a Deferred firing with the ``(channel, message)`` pairs, oldest
            first (empty if nothing came), or failing with
            ``LayerUnavailable`` / ``ResponseError``.

        Raises:
            TypeError: ``prefix`` is not a process-specific prefix.
            ValueError: ``max_messages`` is not a positive integer.
        """
        layer = self.layer
        (name,) = layer.valid_channel_names([prefix], receive=True)
        if not name.endswith("!"):
            raise TypeError(f"receive_replies takes a process-specific prefix ending in '!', not {prefix!r}")
        layer.valid_max_messages(max_messages)
        shard, key = layer._route(name)
        link = self._pop_links.get(shard)
        if link is None:
            # Its own connection: a blocking pop holds up whatever is written after it.
            link = self._pop_links[shard] = ShardLink(
                self.reactor, shard, self._address(shard), layer.blocking_timeout + 5.0)
        done: defer.Deferred = defer.Deferred()

        def attempt() -> None:
            many = max_messages > 1 and shard not in layer._without_blmpop
            link.request([("TIME",), layer.pop_command([key], max_messages, many)],
                         lambda replies: answered(replies, many))

        def answered(replies: Any, many: bool) -> None:
            if isinstance(replies, BaseException):
                done.errback(replies)
                return
            clock, popped = replies
            for reply in replies:
                if isinstance(reply, hiredis.ReplyError):
                    if many and unknown_command(reply):
                        layer.lacks_blmpop(shard)
                        attempt()
                    else:
                        done.errback(reply_error(reply))
                    return
            fresh, expired = layer.fresh_entries(clock, popped, many)
            if expired:
                self._link(shard).run("expired", (), (layer.prefix, *expired), self._expired_dropped)
            if fresh or popped is None:
                received: list[tuple[str, Message]] = []
                layer._decode_into(fresh, received, share=True)  # the server reads its replies, never changes them
                done.callback(received)
            else:
                attempt()  # everything it took had expired: wait again

        attempt()
        return done

    @staticmethod
    def _expired_dropped(reply: Any) -> None:
        if isinstance(reply, BaseException):
            logger.debug("Could not drop expired channels from their groups: %s", reply)

    def close(self) -> None:
        """Close every connection; requests made later fail with ``LayerUnavailable``."""
        for link in [*self._links.values(), *self._pop_links.values()]:
            link.close()

    def __repr__(self) -> str:
        return f"<ReactorRedisClient for {self.layer!r}>"


__all__ = ["ReactorRedisClient", "ShardLink", "reply_error"]
