"""The Redis channel layer behind Redis Sentinel.

Sentinel watches a master and its replicas and promotes a replica when the
master fails. This layer asks the sentinels for the current master of each
service and, when a connection to it fails, asks again, so it follows a
failover by itself (operations during the switch raise ``LayerUnavailable``).
Several services shard channels exactly like several ``hosts`` do.
"""

from __future__ import annotations

from typing import Any, Sequence

from redis.sentinel import Sentinel

from .connection import Shard, make_retry
from .layer import RedisChannelLayer


class RedisSentinelChannelLayer(RedisChannelLayer):
    """A :class:`~.layer.RedisChannelLayer` whose servers are found through Sentinel.

    Args:
        sentinels: the sentinels, as ``(host, port)`` tuples.
        services: the monitored master names (``sentinel monitor <name> ...``);
            several shard the channels. A single str is accepted.
        sentinel_kwargs: connection options for talking to the sentinels
            themselves (``password``, ``socket_timeout``, ...).
        **kwargs: everything :class:`~.layer.RedisChannelLayer` takes but
            ``hosts`` (``connection_kwargs`` applies to the masters).

    Raises:
        TypeError, ValueError: a setting has the wrong type or value.
    """

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        services: Sequence[str] | str = "mymaster",
        sentinel_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "hosts" in kwargs:
            raise TypeError("RedisSentinelChannelLayer finds its servers through sentinels: pass no hosts")
        if isinstance(services, str):
            services = [services]
        if not services or not all(isinstance(name, str) and name for name in services):
            raise TypeError(f"services must be a list of Sentinel service names, not {services!r}")
        if not sentinels or not all(isinstance(s, (tuple, list)) and len(s) == 2 for s in sentinels):
            raise TypeError(f"sentinels must be a list of (host, port) tuples, not {sentinels!r}")
        self.sentinels = [tuple(s) for s in sentinels]
        self.services = list(services)
        self.sentinel_kwargs = dict(sentinel_kwargs or {})
        super().__init__(**kwargs)

    def _make_shards(self, hosts: Any, options: dict[str, Any], pool_size: int) -> list[Shard]:
        options = self._socket_options(options)
        options.setdefault("retry", make_retry())
        options.setdefault("socket_connect_timeout", 2.0)
        sentinel = Sentinel(self.sentinels, sentinel_kwargs=self.sentinel_kwargs or None, **options)
        shards = []
        for service in self.services:
            client = sentinel.master_for(service, max_connections=pool_size)
            shards.append(Shard(client, f"sentinel:{service}"))
        return shards
