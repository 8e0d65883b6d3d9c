"""The Redis layer under channels_redis's name and CONFIG keys (Channels 2-4 settings).

A Channels 2-4 project names ``channels_redis.core.RedisChannelLayer``
(or ``channels_redis.pubsub.RedisPubSubChannelLayer``); the Django app maps
those paths here. :class:`ChannelsRedisChannelLayer` takes channels_redis's
CONFIG keys, translates them and refuses any other with a ``TypeError``
naming it:

* ``hosts``: each entry a URL (``"redis://:pw@host:6379/0"``), a
  ``(host, port)`` pair, or a dict: ``{"address": URL or (host, port)}``
  with optional ``password``, ``username``, ``db``, ``ssl``, or
  ``{"host": ..., "port": ...}``; a dict's other keys are redis-py
  connection options (``socket_timeout``, ``socket_connect_timeout``...),
  which must then be the same for every host. Several hosts shard
  channels, as in channels_redis. Sentinel dicts (``"sentinels"``) are
  refused: use :class:`~.sentinel.RedisSentinelChannelLayer`.
* ``prefix`` (default ``"asgi"``): the key prefix, followed by ``":"``.
* ``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``,
  ``symmetric_encryption_keys``: the same meaning.
* ``random_prefix_length``, ``serializer_format`` (``"msgpack"`` only),
  ``on_disconnect``, ``on_reconnect``: accepted; the channel names and the
  wire format are this project's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .layer import RedisChannelLayer

__all__ = ["CHANNELS_REDIS_KEYS", "ChannelsRedisChannelLayer", "connection_options", "host_entry"]

CHANNELS_REDIS_KEYS: tuple[str, ...] = (
    "hosts", "prefix", "expiry", "group_expiry", "capacity", "channel_capacity", "symmetric_encryption_keys",
    "random_prefix_length", "serializer_format", "on_disconnect", "on_reconnect",
)

_ADDRESS_KEYS = {"address", "host", "port", "password", "username", "db", "ssl"}


def host_entry(entry: Any) -> Any:
    """Return one channels_redis ``hosts`` entry as this layer takes it (a URL or ``(host, port)``).

    A dict's redis-py connection options are not part of the result: see
    :func:`connection_options`.

    Raises:
        TypeError: a Sentinel entry, or not a URL, pair or dict.
        ValueError: a dict without an address.
    """
    if isinstance(entry, (str, tuple, list)):
        return tuple(entry) if isinstance(entry, list) else entry
    if not isinstance(entry, dict):
        raise TypeError(f"channels_redis hosts entries are URLs, (host, port) pairs or dicts, not {entry!r}")
    if "sentinels" in entry:
        raise TypeError("Sentinel hosts are not taken under channels_redis's name: use BACKEND "
                        "'asgi_backends.redis.RedisSentinelChannelLayer'")
    address = entry.get("address")
    if address is None:
        if "host" not in entry:
            raise ValueError(f"channels_redis hosts entry {entry!r} has neither 'address' nor 'host'")
        address = (entry["host"], entry.get("port", 6379))
    if isinstance(address, (tuple, list)):
        host, port = address
        scheme = "rediss" if entry.get("ssl") else "redis"
        address = f"{scheme}://{host}:{int(port)}"
    if not any(key in entry for key in ("password", "username", "db")):
        return address
    scheme, _, rest = address.partition("://")
    netloc, _, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    user = quote(str(entry.get("username") or ""), safe="")
    password = entry.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password is not None else (f"{user}@" if user else "")
    db = entry.get("db", path or 0)
    return f"{scheme}://{auth}{netloc}/{db}"


def connection_options(hosts: list[Any]) -> dict[str, Any]:
    """Return the redis-py options the ``hosts`` dicts carry beside their address.

    Raises:
        TypeError: two hosts give one option different values (this layer
            has one set of options for every connection).
    """
    options: dict[str, Any] = {}
    for entry in hosts:
        if not isinstance(entry, dict):
            continue
        for key in set(entry) - _ADDRESS_KEYS:
            if key in options and options[key] != entry[key]:
                raise TypeError(f"channels_redis hosts give {key!r} different values ({options[key]!r} and "
                                f"{entry[key]!r}); this layer takes one value for every host")
            options[key] = entry[key]
    return options


class ChannelsRedisChannelLayer(RedisChannelLayer):
    """:class:`~.layer.RedisChannelLayer` configured with channels_redis's CONFIG keys.

    Raises:
        TypeError: a key channels_redis does not take, or a host form this layer cannot use.
        ValueError: ``serializer_format`` other than ``"msgpack"``.
    """

    def __init__(self, **config: Any) -> None:
        unknown = set(config) - set(CHANNELS_REDIS_KEYS)
        if unknown:
            raise TypeError(
                f"channels_redis.core.RedisChannelLayer does not take {', '.join(map(repr, sorted(unknown)))}: its "
                f"CONFIG keys are {', '.join(CHANNELS_REDIS_KEYS)}. For this project's own options, use BACKEND "
                "'asgi_backends.redis.RedisChannelLayer'."
            )
        fmt = config.pop("serializer_format", "msgpack")
        if fmt != "msgpack":
            raise ValueError(f"serializer_format {fmt!r} is not supported: messages are msgpack on the wire")
        for ignored in ("random_prefix_length", "on_disconnect", "on_reconnect"):
            config.pop(ignored, None)
        hosts = config.pop("hosts", None) or [("localhost", 6379)]
        if isinstance(hosts, (str, dict)):
            hosts = [hosts]
        prefix = config.pop("prefix", "asgi")
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"prefix must be a non-empty str, not {prefix!r}")
        options = connection_options(hosts)
        super().__init__(hosts=[host_entry(entry) for entry in hosts],
                         prefix=prefix if prefix.endswith(":") else prefix + ":",
                         connection_kwargs=options or None, **config)
