"""The exceptions every channel layer raises.

All of them derive from :class:`ChannelLayerError`, so a caller can catch
"anything the layer refused" in one place. Each layer also exposes
``ChannelFull`` and ``MessageTooLarge`` as attributes (``layer.ChannelFull``),
which is how Channels 1.x code catches them.
"""

from __future__ import annotations


class ChannelLayerError(Exception):
    """Base class for every error a channel layer raises on purpose."""


class ChannelFull(ChannelLayerError):
    """The channel already holds ``capacity`` unread messages.

    Raised by ``send``; the caller should back off and retry later, or
    answer its client with an overload error (HTTP 503, WebSocket 1013).
    """


class MessageTooLarge(ChannelLayerError):
    """The encoded message is larger than the layer's ``max_message_size``.

    Split the payload (HTTP bodies and responses are chunked for this reason)
    or raise the limit in the layer's configuration.
    """


class LayerUnavailable(ChannelLayerError):
    """The layer's backing store cannot be reached right now.

    Raised, for example, by the Redis layer while its server is down. The
    layer reconnects by itself.

    Attributes:
        may_have_run: False when the operation provably did not happen
            (the store could not be reached or the request never left), so
            retrying it is safe; True when the connection broke after the
            request was sent, so the store may have carried it out (a send
            may be queued): retrying a send then risks delivering it twice,
            which at-most-once delivery forbids.
    """

    def __init__(self, message: str, may_have_run: bool = False) -> None:
        super().__init__(message)
        self.may_have_run = may_have_run
