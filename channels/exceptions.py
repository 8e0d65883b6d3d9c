"""Exceptions consumers and views raise to steer the worker and handler.

:class:`ConsumeLater` is the worker's own class (``worker.exceptions``),
re-exported so ``from channels.exceptions import ConsumeLater`` works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.exceptions import ConsumeLater

if TYPE_CHECKING:
    from .message import Message

__all__ = [
    "AcceptConnection",
    "ChannelSocketException",
    "ConsumeLater",
    "DenyConnection",
    "RequestAborted",
    "InvalidChannelLayerError",
    "RequestTimeout",
    "ResponseLater",
    "StopConsumer",
]


class ResponseLater(Exception):
    """Raised by a view that will have its response sent later by other code.

    The handler sends nothing for the request; something else must answer on
    ``request.reply_channel``.
    """


class RequestTimeout(Exception):
    """The request body did not arrive on its ``body_channel`` in time (HTTP 408)."""


class RequestAborted(Exception):
    """The client went away while its request body was being read; nothing is sent."""


class DenyConnection(Exception):
    """Raised in a ``websocket.connect`` consumer (or a Channels 2-4 ``connect()``) to refuse the handshake (HTTP 403)."""


class AcceptConnection(Exception):
    """Raised in a Channels 2-4 consumer's ``connect()`` to accept the handshake."""


class StopConsumer(Exception):
    """Raised by a Channels 2-4 consumer to end its connection's instance (after a disconnect)."""


class InvalidChannelLayerError(ValueError):
    """A consumer needs a channel layer that is not configured (``CHANNEL_LAYERS``)."""


class ChannelSocketException(Exception):
    """Base for exceptions that answer the client themselves.

    Subclasses implement :meth:`run`, which the worker calls with the message
    instead of logging an error.
    """

    def run(self, message: Message) -> None:
        """Send whatever this exception stands for to ``message.reply_channel``."""
        raise NotImplementedError(f"{type(self).__name__} must implement run(message)")
