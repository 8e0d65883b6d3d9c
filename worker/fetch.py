"""The worker's next receive, carried by a consumer's last sends.

A consumer's answer is sent when it returns, and the worker thread then
asks the layer for its next message: two round trips per message. While a
consumer runs, the worker offers a :class:`Fetch` in the thread
(:func:`current_fetch`), so whatever sends the answer (the Django app's
outbox) can make both in one, through the layer's
``send_batch_and_receive``; the worker then handles what came back
instead of receiving. Hooks and consumers that never look cost the
worker that round trip, nothing else.
"""

from __future__ import annotations

import threading
from typing import Iterable

from asgi_backends.base import ChannelLayer, Message


class Fetch:
    """A receive a worker thread wants made with a consumer's last batch of sends.

    Made by the worker for one message and offered while its consumer
    runs. Used at most once: the first :meth:`send_batch` on the
    worker's layer makes it; later sends go out as usual.

    Attributes:
        layer: the worker's layer; sends to any other go out on their own.
        channels: the channels the worker listens on.
        count: how many messages to take at most.
        received: what the receive took, or None while it has not been made.
    """

    __slots__ = ("layer", "channels", "count", "received")

    def __init__(self, layer: ChannelLayer, channels: list[str], count: int) -> None:
        self.layer = layer
        self.channels = channels
        self.count = count
        self.received: list[tuple[str, Message]] | None = None

    def send_batch(self, layer: object, items: Iterable[tuple[str, Message]]) -> list[Exception | None] | None:
        """Send ``items`` on ``layer`` and make the receive in the same round trip, if it can.

        Returns:
            ``layer.send_batch``'s results; or None, having sent nothing,
            when ``layer`` is not the worker's or the receive was made
            already (the caller sends as usual).

        Raises:
            what ``send_batch_and_receive`` raises.
        """
        if layer is not self.layer or self.received is not None:
            return None
        results, self.received = self.layer.send_batch_and_receive(items, self.channels, self.count)
        return results

    def send(self, layer: object, channel: str, message: Message) -> bool:
        """Send one message as :meth:`send_batch` does; True if it was queued.

        False, having queued nothing, when the fetch cannot carry it or the
        channel is full: the caller sends it as usual (and retries).

        Raises:
            MessageTooLarge, TypeError: the message cannot be sent.
            LayerUnavailable: the layer cannot be reached.
        """
        results = self.send_batch(layer, [(channel, message)])
        if results is None:
            return False
        result = results[0]
        if result is None:
            return True
        if isinstance(result, self.layer.ChannelFull):
            return False
        raise result

    def offer(self) -> None:
        """Make this the thread's :func:`current_fetch` (until :meth:`withdraw`)."""
        _offered.fetch = self

    @staticmethod
    def withdraw() -> None:
        """Leave the thread without a :func:`current_fetch`."""
        _offered.fetch = None


_offered = threading.local()


def current_fetch() -> Fetch | None:
    """Return the receive the worker offers while this thread's consumer runs, or None."""
    return getattr(_offered, "fetch", None)


def send_with_fetch(layer: object, channel: str, message: Message) -> bool:
    """Send a consumer's last message with the worker's offered fetch (:meth:`Fetch.send`); True if it went.

    False, having sent nothing, when no fetch is offered or it cannot carry
    the message: the caller sends it as usual.
    """
    fetch = current_fetch()
    return fetch is not None and fetch.send(layer, channel, message)
