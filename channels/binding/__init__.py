"""Data binding: model saves and deletes broadcast to groups; client frames applied to models.

* :class:`channels.binding.base.Binding` -- the mechanism (signals, group
  bookkeeping, inbound actions with a permission hook).
* :class:`channels.binding.websockets.WebsocketBinding` -- JSON over a
  demultiplexed WebSocket stream.
"""

from .base import CREATE, DELETE, UPDATE, Binding

__all__ = ["CREATE", "DELETE", "UPDATE", "Binding"]
