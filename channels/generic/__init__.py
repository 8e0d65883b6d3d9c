"""Class-based consumers: :class:`BaseConsumer` and, in submodules, the HTTP and WebSocket ones.

* :mod:`channels.generic.websockets`: ``WebsocketConsumer``,
  ``JsonWebsocketConsumer``, ``WebsocketMultiplexer``,
  ``WebsocketDemultiplexer``.
* :mod:`channels.generic.http`: ``HttpConsumer``.
"""

from .base import BaseConsumer

__all__ = ["BaseConsumer"]
