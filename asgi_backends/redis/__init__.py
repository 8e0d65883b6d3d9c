"""The Redis channel layer (DESIGN §4): production transport across machines.

* :class:`RedisChannelLayer` -- one Redis server, or several sharded by
  consistent hashing.
* :class:`RedisSentinelChannelLayer` -- Redis behind Sentinel, following
  failovers of the master.

:mod:`.legacy` holds the same layers under asgi_redis 1.x's CONFIG keys, for
the historical backend paths.
"""

from .layer import RedisChannelLayer
from .sentinel import RedisSentinelChannelLayer

__all__ = ["RedisChannelLayer", "RedisSentinelChannelLayer"]
