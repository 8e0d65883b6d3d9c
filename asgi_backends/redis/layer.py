"""The Redis channel layer: channels as Redis lists, groups as sorted sets.

Every operation that touches more than one key is one Lua script (see
``scripts/*.lua`` for the key layout), called by SHA in a single round trip:
``send`` is one ``EVALSHA``, a ``receive`` that finds a message is one
``EVALSHA``, and a blocked ``receive`` waits in ``BLPOP``, woken by Redis the
moment a message is pushed. The batch operations ``send_batch`` and
``receive_batch`` are one ``EVALSHA`` per shard for the whole batch.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Sequence

import msgpack
import redis

from ..base import DEFAULT_PROCESS_CAPACITY, BaseChannelLayer, Message, non_local_name, unpack
from .batch import BatchOperations
from .blocking import pop_many
from .connection import UNAVAILABLE_ERRORS, HashRing, Shard, describe_host, make_pool
from .crypto import Crypter, InvalidToken
from .resp import reactor_address

if TYPE_CHECKING:
    from .reactor_client import ReactorRedisClient

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_MARGIN = 5.0
"""Seconds a connection's socket timeout exceeds the blocking-pop timeout."""


FETCH_CACHE_SIZE = 64
"""Channel lists whose checked receive targets ``send_batch_and_receive`` keeps."""

class RedisChannelLayer(BatchOperations, BaseChannelLayer):
    """Channel layer backed by one or several Redis servers.

    Args:
        hosts: Redis servers, each a URL (``"redis://host:6379/0"``) or a
            ``(host, port)`` tuple. Several hosts shard channels by
            consistent hashing of their names, so every process must list
            the same hosts (in any order). A process-specific channel goes
            where its ``name!`` prefix hashes, so one process's replies all
            wait in one list on one shard; a single-reader channel hashes
            as a whole, so the random suffix ``new_channel`` draws places it
            on a random shard, where it then stays.
        prefix: prepended to every Redis key.
        expiry: seconds an unread message lives.
        group_expiry: seconds a group membership lives after ``group_add``.
        capacity: default unread messages a channel may hold.
        channel_capacity: per-channel overrides (names, globs or regexes).
        symmetric_encryption_keys: secrets to encrypt messages at rest; the
            first encrypts, all decrypt (rotation).
        connection_kwargs: extra options for every ``redis`` connection
            (``password``, ``ssl``, ``socket_timeout``, ...).
        blocking_timeout: longest wait of ``receive(block=True)``, seconds.
        pool_size: pooled connections per host, for blocking receives that
            span shards and for ``flush``; a burst waits for a free one.
            Everything else runs on one connection per thread.
        max_message_size: largest encoded message ``send`` accepts.
        process_capacity: default capacity of each process-specific prefix
            (see :class:`~asgi_backends.base.BaseChannelLayer`).
        stats_prefix: asgi_redis's prefix for its statistics keys, accepted
            (a str) so its settings load; the statistics here live under
            ``prefix + "stats:"``.

    Raises:
        TypeError, ValueError: a setting has the wrong type or value.
    """

    extensions = ["groups", "flush", "statistics", "twisted", "asyncio"]

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        connection_kwargs: dict[str, Any] | None = None,
        blocking_timeout: float = 5.0,
        pool_size: int = 64,
        max_message_size: int = 1024 * 1024,
        process_capacity: int = DEFAULT_PROCESS_CAPACITY,
        stats_prefix: str = "asgi-meta:",
    ) -> None:
        if not isinstance(stats_prefix, str):
            raise TypeError(f"stats_prefix must be a str, not {stats_prefix!r}")
        self.stats_prefix = stats_prefix
        super().__init__(
            expiry=expiry,
            group_expiry=group_expiry,
            capacity=capacity,
            channel_capacity=channel_capacity,
            max_message_size=max_message_size,
            process_capacity=process_capacity,
        )
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"prefix must be a non-empty str, not {prefix!r}")
        if blocking_timeout <= 0:
            raise ValueError(f"blocking_timeout must be a positive number of seconds, not {blocking_timeout!r}")
        self.prefix = prefix
        self.blocking_timeout = blocking_timeout
        self._expiry_ms = str(int(expiry * 1000))
        self._group_expiry_ms = str(int(group_expiry * 1000))
        self._crypter = Crypter(symmetric_encryption_keys) if symmetric_encryption_keys else None
        self._shards = self._make_shards(hosts, dict(connection_kwargs or {}), pool_size)
        self._ring = HashRing(self._shards)
        self._route_cache: dict[str, tuple[Shard, str]] = {}
        # send_batch_and_receive's channel lists (a worker's, the same each time), checked and grouped once.
        self._fetch_cache: dict[tuple[str, ...], list[tuple[Shard, list[str]]]] = {}
        self._fetch_turn = 0
        self._without_blmpop: set[Shard] = set()

    def _make_shards(self, hosts: Sequence[Any] | None, options: dict[str, Any], pool_size: int) -> list[Shard]:
        if hosts is None:
            hosts = [("localhost", 6379)]
        if isinstance(hosts, str) or (isinstance(hosts, tuple) and hosts and isinstance(hosts[0], str)):
            hosts = [hosts]  # one host given on its own
        options = self._socket_options(options)
        shards: list[Shard] = []
        for host in hosts:
            label = describe_host(host)
            if any(shard.label == label for shard in shards):
                raise ValueError(f"Redis host {label} is listed twice in hosts")
            client = redis.Redis(connection_pool=make_pool(host, pool_size, options))
            shards.append(Shard(client, label, reactor_address(host, options)))
        return shards

    def _socket_options(self, options: dict[str, Any]) -> dict[str, Any]:
        # redis-py's default 5 s socket timeout would cut a 5 s BLPOP short
        # and drop the connection: keep the socket timeout above the pop's.
        timeout = options.setdefault("socket_timeout", self.blocking_timeout + SOCKET_TIMEOUT_MARGIN)
        if timeout is not None and timeout <= self.blocking_timeout:
            raise ValueError(
                f"connection_kwargs socket_timeout ({timeout!r}) must exceed blocking_timeout "
                f"({self.blocking_timeout!r}), or blocking receives would be cut off"
            )
        return options

    # -- routing ---------------------------------------------------------------

    def _route(self, channel: str) -> tuple[Shard, str]:
        """Return the shard and list key of a channel (process-specific: of its prefix)."""
        queue = non_local_name(channel)
        try:
            return self._route_cache[queue]
        except KeyError:
            pass
        route = (self._ring.shard_for(queue), self.prefix + queue)
        # Cached by queue: a reply channel's unique name (a!xyz) shares its
        # prefix's entry; a single-reader name (a?xyz) is drawn fresh for
        # one connection, so it is not cached. Caching full names filled the
        # cache with 10,000 one-off entries (1.6 MiB) in every worker.
        if "?" not in queue and len(self._route_cache) < 10000:
            self._route_cache[queue] = route
        return route

    # -- send and receive ------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``.

        Raises:
            TypeError: bad channel name or message.
            ChannelFull: the channel holds ``capacity`` unread messages.
            MessageTooLarge: the encoded message is over the size limit.
            LayerUnavailable: Redis cannot be reached.
        """
        self.valid_channel_name(channel)
        items = [(channel, message)]
        results, calls = self.plan_sends(items)
        for call in calls:
            self.collect_sends(items, results, call, call.shard.run(call.script, call.keys, call.args))
        if results[0] is not None:
            raise results[0]

    def receive(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]:
        """Take the oldest message from one of ``channels``.

        Channels are tried in random order so a busy one cannot starve the
        others. With ``block=True``, waits up to ``blocking_timeout`` seconds
        in ``BLPOP`` (across all the shards involved) for a send.

        Returns:
            ``(channel, message)`` -- the full name for process-specific
            channels -- or ``(None, None)``.

        Raises:
            TypeError: bad channel names.
            LayerUnavailable: Redis cannot be reached.
        """
        targets = self._targets(self.valid_channel_names(channels, receive=True))
        if not targets:
            return None, None
        if block and len(targets) == 1:
            # One shard: a blocking pop that checks expiry itself, in one round trip.
            entries = self._pop_fresh(*targets[0], 1)
            return self._decode(entries[0]) if entries else (None, None)
        prefix = (self.prefix,)
        for shard, keys in targets:
            entry = shard.run("receive", keys, prefix)
            if entry is not None:
                return self._decode(entry)
        if not block:
            return None, None
        if len(targets) == 1:
            shard, keys = targets[0]
            popped = shard.execute("BLPOP", *keys, self.blocking_timeout)
        else:
            popped = pop_many(targets, self.blocking_timeout)
        if popped is None:
            return None, None
        # The lists were empty a moment ago, so this entry is fresh.
        return self._decode(popped[1])

    def _targets(self, channels: list[str]) -> list[tuple[Shard, list[str]]]:
        """Group the channels' keys by shard, in a random order so none starves (empty for no channels)."""
        if len(channels) == 1:
            shard, key = self._route(channels[0])
            return [(shard, [key])]
        by_shard: dict[Shard, list[str]] = {}
        for channel in random.sample(channels, len(channels)):
            shard, key = self._route(channel)
            keys = by_shard.setdefault(shard, [])
            if key not in keys:
                keys.append(key)
        targets = list(by_shard.items())
        random.shuffle(targets)
        return targets

    def _fetch_targets(self, channels: list[str]) -> list[tuple[Shard, list[str]]]:
        """:meth:`_targets` for a list received from again and again: checked and grouped once, then rotated.

        On one shard the keys start one further along at each call, so each
        list takes its turn at the head of a pop that serves the first list
        with entries; across shards, the order is shuffled as usual.
        """
        if type(channels) is not list:
            return self._targets(self.valid_channel_names(channels, receive=True))
        key = tuple(channels)
        try:
            targets = self._fetch_cache.get(key)
        except TypeError:  # something unhashable among the names: let the check say what is wrong
            return self._targets(self.valid_channel_names(channels, receive=True))
        if targets is None:
            targets = self._targets(self.valid_channel_names(channels, receive=True))
            if len(self._fetch_cache) >= FETCH_CACHE_SIZE:
                self._fetch_cache.clear()
            self._fetch_cache[key] = targets
        if len(targets) != 1:
            return self._targets(list(channels))
        shard, keys = targets[0]
        if len(keys) == 1:
            return targets
        turn = self._fetch_turn = (self._fetch_turn + 1) % len(keys)
        return [(shard, keys[turn:] + keys[:turn])]

    def _decode(self, entry: bytes) -> tuple[str | None, Message | None]:
        _, channel, data = entry.split(b":", 2)
        return self._decode_parts(channel, data)

    def _decode_parts(self, channel: bytes, data: bytes) -> tuple[str | None, Message | None]:
        """Return ``(channel, message)`` from an entry's channel and payload, or ``(None, None)`` (logged)."""
        if self._crypter is not None:
            try:
                data = self._crypter.decrypt(data)
            except InvalidToken:
                logger.error(
                    "Dropped a message on %s that none of symmetric_encryption_keys decrypts; "
                    "check every process uses the same keys",
                    channel.decode("ascii", "replace"),
                )
                return None, None
        try:
            return channel.decode("ascii"), unpack(data)
        except (ValueError, msgpack.UnpackException) as exc:
            logger.error(
                "Dropped an undecodable message on %s (%s); is another process using "
                "symmetric_encryption_keys this one lacks?",
                channel.decode("ascii", "replace"),
                exc,
            )
            return None, None

    # -- groups ----------------------------------------------------------------

    def _group_keys(self, group: str) -> tuple[str, str]:
        return f"{self.prefix}group:{group}", f"{self.prefix}groupcap:{group}"

    def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, renewing its membership for ``group_expiry``.

        Raises:
            TypeError: bad group or channel name.
            LayerUnavailable: Redis cannot be reached.
        """
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        shard, _ = self._route(channel)
        keys = (*self._group_keys(group), f"{self.prefix}member:{channel}")
        shard.run("group_add", keys, (group, channel, self._group_expiry_ms, self.get_capacity(channel)))

    def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        shard, _ = self._route(channel)
        keys = (*self._group_keys(group), f"{self.prefix}member:{channel}")
        shard.run("group_discard", keys, (group, channel))

    def group_channels(self, group: str) -> list[str]:
        """Return the channels currently in ``group`` (on every shard)."""
        self.valid_group_name(group)
        key = self._group_keys(group)[0]
        members = []
        for shard in self._shards:
            members.extend(name.decode("ascii") for name in shard.run("group_channels", (key,), ()))
        return members

    def send_group(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``: one Lua call per shard.

        A member at capacity misses this message; ``ChannelFull`` is never
        raised. Members whose earlier message expired unread are dropped
        from the group instead of being sent to.

        Raises:
            TypeError: bad group name or message.
            MessageTooLarge: the encoded message is over the size limit.
            LayerUnavailable: Redis cannot be reached.
        """
        self.valid_group_name(group)
        data = self.encode(message)
        if self._crypter is not None:
            data = self._crypter.encrypt(data)
        keys = (*self._group_keys(group), self.prefix + "stats:")
        args = (self.prefix, data, self._expiry_ms, self.capacity)
        for shard in self._shards:
            shard.run("send_group", keys, args)

    # -- flush, statistics, lifecycle -------------------------------------------

    def flush(self) -> None:
        """Delete every key under this layer's prefix, on every shard (SCAN, never KEYS)."""
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in self.prefix) + "*"
        for shard in self._shards:
            batch = []
            try:
                for key in shard.client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        shard.client.unlink(*batch)
                        batch.clear()
                if batch:
                    shard.client.unlink(*batch)
            except UNAVAILABLE_ERRORS as exc:
                raise shard.unavailable(exc) from exc

    def global_statistics(self) -> dict[str, int]:
        """Return ``messages_count`` and ``channel_full_count`` summed over the shards."""
        totals = {"messages_count": 0, "channel_full_count": 0}
        for shard in self._shards:
            counts = shard.execute("HMGET", self.prefix + "stats:", *totals)
            for name, value in zip(list(totals), counts):
                totals[name] += int(value or 0)
        return totals

    def channel_statistics(self, channel: str) -> dict[str, float]:
        """Return counts for ``channel`` (process-specific: for its prefix).

        ``messages_count`` and ``channel_full_count`` are kept while the
        channel is in use (they lapse after twice ``expiry`` idle);
        ``messages_pending`` and ``messages_max_age`` (seconds) describe the
        unread messages now.
        """
        self.valid_channel_name(channel)
        shard, key = self._route(channel)
        stats_key = f"{self.prefix}stats:{key[len(self.prefix):]}"
        pending, count, full, now, head = shard.run("channel_statistics", (key, stats_key), (self.prefix,))
        age = (now - (head - int(self._expiry_ms))) / 1000 if head else 0.0
        return {
            "messages_count": count,
            "messages_pending": pending,
            "messages_max_age": max(age, 0.0),
            "channel_full_count": full,
        }

    def reactor_client(self, reactor: Any) -> ReactorRedisClient | None:
        """Return a client for sends and reply receives inside a Twisted reactor, or None if a shard needs the blocking one.

        The interface server sends through it instead of sender threads
        (see :mod:`~.reactor_client`). None when a host is reached over
        TLS, through Sentinel, with RESP3 or with a ``connection_kwargs``
        option the reactor's connections do not honour.
        """
        if any(shard.address is None for shard in self._shards):
            return None
        from .reactor_client import ReactorRedisClient

        return ReactorRedisClient(self, reactor)

    def close(self) -> None:
        """Close all connections; the layer reconnects if used again."""
        for shard in self._shards:
            shard.close()

    def __repr__(self) -> str:
        hosts = ", ".join(shard.label for shard in self._shards)
        return f"<{type(self).__qualname__} hosts=[{hosts}] prefix={self.prefix!r}>"
