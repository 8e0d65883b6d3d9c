"""A worker-model message bus for Django (the Channels 1.x API).

``Channel`` and ``Group`` send messages; ``route``, ``route_class`` and
``include`` build routing (as in :mod:`channels.routing`, re-exported here
as Channels 1.x did); :data:`channel_layers` is the registry of configured
layers; :data:`DEFAULT_CHANNEL_LAYER` names the one used when no alias is
given.
"""

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .channel import Channel, Group
from .routing import include, route, route_class

__version__ = "1.2.0"

__all__ = ["DEFAULT_CHANNEL_LAYER", "Channel", "Group", "channel_layers", "include", "route", "route_class"]
