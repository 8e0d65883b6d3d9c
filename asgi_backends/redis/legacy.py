"""The Redis layers under asgi_redis 1.x's names and CONFIG keys.

Settings written for Channels 1.x name ``asgi_redis.RedisSentinelChannelLayer``
or ``asgi_redis.RedisLocalChannelLayer``; the Django app maps those paths to
the classes here, which take exactly the CONFIG keys asgi_redis 1.4.3 took,
translate them to this project's layers and refuse any other key with a
``TypeError`` naming it. For this project's own options (``blocking_timeout``,
``pool_size``, ``sentinel_kwargs``, ...) name the layers themselves:
:class:`~.layer.RedisChannelLayer` and :class:`~.sentinel.RedisSentinelChannelLayer`.

What asgi_redis 1.4.3 took, and what becomes of it here:

* ``expiry``, ``prefix``, ``group_expiry``, ``capacity``, ``channel_capacity``,
  ``symmetric_encryption_keys``: the same meaning, passed on.
* ``hosts``: Redis servers for the local variant; for the Sentinel variant,
  the *sentinels*, as ``(host, port)`` pairs only (default
  ``[("localhost", 26379)]``), passed on as ``sentinels``.
* ``connection_kwargs``: redis-py options for every connection, passed on.
  asgi_redis refused a ``socket_timeout`` under its 5 s blocking pop with
  ``ValueError``, and so do these; a ``socket_timeout`` it allowed that would
  not exceed our 5 s pop shortens the pop to stay under it.
* ``stats_prefix``: accepted and checked, but unused: the statistics live
  under ``prefix + "stats:"`` so that ``flush`` clears them with the rest.
* ``services`` (Sentinel): the monitored master names; when empty, the
  sentinels are asked for all of them (``SENTINEL MASTERS``), as asgi_redis did.
* ``sentinel_refresh_interval`` (Sentinel): accepted and checked, but unused.
  asgi_redis made a new client per operation and asked Sentinel each time
  unless told to cache the answer; this layer keeps one pooled client per
  service, which asks Sentinel when it opens a connection and again after
  a connection fails, so there is no per-operation query to cache.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import redis
from redis.sentinel import Sentinel

from ..exceptions import LayerUnavailable
from .layer import RedisChannelLayer
from .sentinel import RedisSentinelChannelLayer

#: The CONFIG keys of asgi_redis 1.4.3's RedisChannelLayer and RedisLocalChannelLayer.
REDIS_KEYS: tuple[str, ...] = (
    "expiry", "hosts", "prefix", "group_expiry", "capacity", "channel_capacity",
    "symmetric_encryption_keys", "stats_prefix", "connection_kwargs",
)
#: The CONFIG keys of asgi_redis 1.4.3's RedisSentinelChannelLayer.
SENTINEL_KEYS: tuple[str, ...] = (*REDIS_KEYS, "services", "sentinel_refresh_interval")

ASGI_REDIS_BLPOP_TIMEOUT = 5.0
"""asgi_redis's blocking-pop timeout: the least ``socket_timeout`` it allowed."""

DEFAULT_SENTINEL_HOSTS = [("localhost", 26379)]


def refuse_unknown(historical: str, unknown: Mapping[str, Any], accepted: Sequence[str], ours: str) -> None:
    """Raise ``TypeError`` naming the keys in ``unknown``, if any."""
    if unknown:
        raise TypeError(
            f"{historical} does not take {', '.join(map(repr, sorted(unknown)))}: its CONFIG keys are those of "
            f"asgi_redis 1.4.3 ({', '.join(accepted)}). For this project's own options, "
            f"use BACKEND {ours!r}."
        )


def blocking_timeout_for(connection_kwargs: Mapping[str, Any] | None) -> float:
    """Return the blocking-pop timeout that suits ``connection_kwargs``, checked as asgi_redis did.

    Raises:
        ValueError: a ``socket_timeout`` shorter than asgi_redis's 5 s pop.
    """
    socket_timeout = (connection_kwargs or {}).get("socket_timeout")
    if not socket_timeout:  # None or 0 (no timeout): asgi_redis did not check either
        return ASGI_REDIS_BLPOP_TIMEOUT
    if socket_timeout < ASGI_REDIS_BLPOP_TIMEOUT:
        raise ValueError(
            f"connection_kwargs socket_timeout ({socket_timeout!r}) must be at least {ASGI_REDIS_BLPOP_TIMEOUT:g} "
            "seconds, as asgi_redis required"
        )
    # Keep the pop a second under the socket timeout, never over asgi_redis's 5 s.
    return min(ASGI_REDIS_BLPOP_TIMEOUT, socket_timeout - 1.0)




def sentinel_addresses(hosts: Any) -> list[tuple[str, int]]:
    """Return asgi_redis's Sentinel ``hosts`` as ``(host, port)`` tuples.

    Raises:
        ValueError: one str instead of a list, or a URL among the hosts
            (asgi_redis refused both the same way).
    """
    if not hosts:
        return list(DEFAULT_SENTINEL_HOSTS)
    if isinstance(hosts, str):
        raise ValueError(f"Sentinel hosts must be a list of (host, port) pairs, not one str {hosts!r}")
    addresses = []
    for entry in hosts:
        if isinstance(entry, str):
            raise ValueError(f"Sentinel hosts must be (host, port) pairs, not strings such as {entry!r}")
        addresses.append(tuple(entry))
    return addresses


def discover_services(sentinels: list[tuple[str, int]], connection_kwargs: Mapping[str, Any] | None) -> list[str]:
    """Ask the sentinels, in turn, for the names of the masters they monitor.

    Raises:
        LayerUnavailable: no sentinel answered.
        ValueError: the sentinels monitor no master.
    """
    options = {key: value for key, value in (connection_kwargs or {}).items() if key.startswith("socket_")}
    options.setdefault("socket_connect_timeout", 2.0)
    options.setdefault("socket_timeout", 2.0)
    errors = []
    for (host, port), client in zip(sentinels, Sentinel(sentinels, sentinel_kwargs=options).sentinels):
        try:
            masters = client.sentinel_masters()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            errors.append(f"{host}:{port}: {exc}")
            continue
        finally:
            client.close()
        if not masters:
            raise ValueError(f"The sentinels {sentinels} monitor no master: list the services in CONFIG['services']")
        return sorted(masters)
    raise LayerUnavailable(
        f"No sentinel answered SENTINEL MASTERS ({'; '.join(errors)}); start them, or list the services "
        "in CONFIG['services']"
    )


class AsgiRedisLocalChannelLayer(RedisChannelLayer):
    """``asgi_redis.RedisLocalChannelLayer``: a :class:`~.layer.RedisChannelLayer` taking 1.x's CONFIG keys.

    asgi_redis sent normal channels through a machine-local asgi_ipc layer
    and only ``!``/``?`` channels and groups through Redis, to spare Redis
    traffic, at the price that every normal channel had to be consumed on
    the machine that sent it. This one sends everything through Redis: the
    same messages reach the same consumers, on any machine, so settings
    written for it keep working (see ``docs/backends.rst``).

    Takes the keyword arguments in :data:`REDIS_KEYS` (see the module docstring).

    Raises:
        TypeError: a key asgi_redis did not take, or a value of the wrong type.
        ValueError: a value asgi_redis or this layer refuses.
    """

    def __init__(
        self,
        expiry: float = 60,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        stats_prefix: str = "asgi-meta:",
        connection_kwargs: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        refuse_unknown(
            "asgi_redis.RedisLocalChannelLayer", unknown, REDIS_KEYS, "asgi_backends.redis.RedisChannelLayer",
        )
        super().__init__(
            hosts=hosts or None,
            prefix=prefix,
            expiry=expiry,
            group_expiry=group_expiry,
            capacity=capacity,
            channel_capacity=channel_capacity,
            symmetric_encryption_keys=symmetric_encryption_keys,
            connection_kwargs=connection_kwargs,
            blocking_timeout=blocking_timeout_for(connection_kwargs),
            stats_prefix=stats_prefix,
        )


class AsgiRedisSentinelChannelLayer(RedisSentinelChannelLayer):
    """``asgi_redis.RedisSentinelChannelLayer``: a :class:`~.sentinel.RedisSentinelChannelLayer` taking 1.x's keys.

    ``hosts`` are the sentinels and ``services`` the master names (all the
    sentinels monitor, when empty). Takes the keyword arguments in
    :data:`SENTINEL_KEYS` (see the module docstring).

    Raises:
        TypeError: a key asgi_redis did not take, or a value of the wrong type.
        ValueError: a value asgi_redis or this layer refuses.
        LayerUnavailable: ``services`` is empty and no sentinel answered.
    """

    def __init__(
        self,
        expiry: float = 60,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        stats_prefix: str = "asgi-meta:",
        connection_kwargs: dict[str, Any] | None = None,
        services: Sequence[str] | None = None,
        sentinel_refresh_interval: float = 0,
        **unknown: Any,
    ) -> None:
        refuse_unknown(
            "asgi_redis.RedisSentinelChannelLayer", unknown, SENTINEL_KEYS,
            "asgi_backends.redis.RedisSentinelChannelLayer",
        )
        if isinstance(sentinel_refresh_interval, bool) or not isinstance(sentinel_refresh_interval, (int, float)):
            raise TypeError(f"sentinel_refresh_interval must be a number of seconds, not {sentinel_refresh_interval!r}")
        blocking_timeout = blocking_timeout_for(connection_kwargs)
        sentinels = sentinel_addresses(hosts)
        self.sentinel_refresh_interval = sentinel_refresh_interval
        super().__init__(
            sentinels=sentinels,
            services=services or discover_services(sentinels, connection_kwargs),
            prefix=prefix,
            expiry=expiry,
            group_expiry=group_expiry,
            capacity=capacity,
            channel_capacity=channel_capacity,
            symmetric_encryption_keys=symmetric_encryption_keys,
            connection_kwargs=connection_kwargs,
            blocking_timeout=blocking_timeout,
            stats_prefix=stats_prefix,
        )
