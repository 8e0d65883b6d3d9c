"""A worker-model message bus for Django (the Channels 1.x API).

``Channel`` and ``Group`` send messages; :data:`channel_layers` is the
registry of configured layers; :data:`DEFAULT_CHANNEL_LAYER` names the one
used when no alias is given.
"""

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .channel import Channel, Group

__version__ = "1.2.0"

__all__ = ["DEFAULT_CHANNEL_LAYER", "Channel", "Group", "channel_layers"]
