"""The Redis channel layer (DESIGN §4): production transport across machines.

* :class:`RedisChannelLayer` -- one Redis server, or several sharded by
  consistent hashing.
* :class:`RedisSentinelChannelLayer` -- Redis behind Sentinel, following
  failovers of the master.
"""

from .layer import RedisChannelLayer
from .sentinel import RedisSentinelChannelLayer

__all__ = ["RedisChannelLayer", "RedisSentinelChannelLayer"]
