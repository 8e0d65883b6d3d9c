"""``Message``: what a consumer receives."""

from __future__ import annotations

import copy
from typing import Any, ItemsView, KeysView, ValuesView

from asgi_backends.base import ChannelLayer

from .channel import Channel


class Message:
    """One message taken off a channel.

    Attributes:
        content: the message dict.
        channel: the :class:`~channels.Channel` it arrived on.
        reply_channel: a :class:`~channels.Channel` for the ``reply_channel``
            key, or ``None`` when the message has none.
        channel_layer: the layer it came from.

    Decorators add more attributes (``channel_session``, ``http_session``,
    ``user``).
    """

    def __init__(self, content: dict, channel_name: str, channel_layer: ChannelLayer) -> None:
        self.content = content
        self.channel_layer = channel_layer
        self.channel = Channel(channel_name, channel_layer=channel_layer)
        reply = content.get("reply_channel")
        self.reply_channel = Channel(reply, channel_layer=channel_layer) if reply else None

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.content[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.content

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``content[key]``, or ``default`` when absent."""
        return self.content.get(key, default)

    def keys(self) -> KeysView[str]:
        """Return the content's keys."""
        return self.content.keys()

    def values(self) -> ValuesView[Any]:
        """Return the content's values."""
        return self.content.values()

    def items(self) -> ItemsView[str, Any]:
        """Return the content's items."""
        return self.content.items()

    def copy(self) -> Message:
        """Return a message with a deep copy of the content, safe to modify."""
        return type(self)(copy.deepcopy(self.content), self.channel.name, self.channel_layer)

    def __repr__(self) -> str:
        return f"<Message on {self.channel.name}>"
