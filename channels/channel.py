"""``Channel`` and ``Group``: what user code sends through.

Inside a consumer, sends are held until it returns successfully (see
:mod:`channels.outbox`); pass ``immediately=True`` to send at once.
"""

from __future__ import annotations

from typing import Any

from asgi_backends.base import ChannelLayer, loggable_name

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .outbox import outbox


def _name(name: Any, kind: str) -> str:
    if isinstance(name, bytes):
        name = name.decode("ascii")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__} ({name!r})")
    return name


class Channel:
    """A named channel on a channel layer.

    Args:
        name: the channel's name (``"chat-messages"``, a reply channel...).
        alias: which configured layer to use.
        channel_layer: a layer object to use instead of looking ``alias`` up.
    """

    __slots__ = ("name", "channel_layer")

    #: the layer method that sends to this target (used when held sends are flushed)
    layer_method = "send"

    def __init__(self, name: str, alias: str = DEFAULT_CHANNEL_LAYER, channel_layer: ChannelLayer | None = None) -> None:
        self.name = _name(name, "Channel")
        self.channel_layer = channel_layer if channel_layer is not None else channel_layers[alias]

    def send(self, content: dict, immediately: bool = False) -> None:
        """Send ``content`` (a dict) on this channel.

        Inside a consumer the send happens when the consumer returns, unless
        ``immediately`` is true.

        Raises:
            TypeError: ``content`` is not a dict.
            ChannelFull: (immediate sends) the channel is at capacity.
        """
        if not isinstance(content, dict):
            raise TypeError(f"Channel.send takes a dict, not {type(content).__name__}")
        if outbox.active:
            outbox.note_send(self.name, content)
            if not immediately:
                outbox.add(self, content)
                return
        self.channel_layer.send(self.name, content)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # A reply channel's name is a capability, and reprs end up in logs.
        return f"<Channel {loggable_name(self.name)}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Channel):
            return self.name == other.name and self.channel_layer is other.channel_layer
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


class Group:
    """A named set of channels that can all be sent one message.

    Members expire ``group_expiry`` seconds after they were last added, so
    re-add long-lived members now and then.
    """

    __slots__ = ("name", "channel_layer")

    layer_method = "send_group"

    def __init__(self, name: str, alias: str = DEFAULT_CHANNEL_LAYER, channel_layer: ChannelLayer | None = None) -> None:
        self.name = _name(name, "Group")
        self.channel_layer = channel_layer if channel_layer is not None else channel_layers[alias]

    def add(self, channel: Channel | str) -> None:
        """Add a channel (a :class:`Channel` or its name) to the group; happens at once."""
        self.channel_layer.group_add(self.name, channel.name if isinstance(channel, Channel) else channel)

    def discard(self, channel: Channel | str) -> None:
        """Remove a channel from the group; no error if it was not a member."""
        self.channel_layer.group_discard(self.name, channel.name if isinstance(channel, Channel) else channel)

    def send(self, content: dict, immediately: bool = False) -> None:
        """Send ``content`` to every member (held until the consumer returns unless ``immediately``).

        Raises:
            TypeError: ``content`` is not a dict.
        """
        if not isinstance(content, dict):
            raise TypeError(f"Group.send takes a dict, not {type(content).__name__}")
        if outbox.active and not immediately:
            outbox.add(self, content)
            return
        self.channel_layer.send_group(self.name, content)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Group {self.name}>"
