"""Hooks through which an application plugs into a :class:`~worker.worker.Worker`.

The worker knows nothing about Django; :mod:`channels` subclasses
:class:`WorkerHooks` to build its ``Message`` objects, buffer sends, fire
Django signals and turn failures into HTTP 500 responses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from asgi_backends.base import ChannelLayer, loggable_name

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger(__name__)

Consumer = Callable[..., Any]

INTERNAL_ERROR = {
    "status": 500,
    "headers": [[b"content-type", b"text/plain; charset=utf-8"]],
    "content": b"Internal Server Error",
    "more_content": False,
}


class RawMessage:
    """The message object the default hooks hand to routers and consumers.

    Attributes:
        content: the message dict as received.
        channel_name: the channel it arrived on.
        channel_layer: the layer it came from.
    """

    __slots__ = ("content", "channel_name", "channel_layer")

    def __init__(self, content: dict, channel_name: str, channel_layer: ChannelLayer) -> None:
        self.content = content
        self.channel_name = channel_name
        self.channel_layer = channel_layer

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``content[key]``, or ``default`` when absent."""
        return self.content.get(key, default)


class WorkerHooks:
    """Default behaviour of a worker; override the methods you need.

    Every method is called from the worker thread that holds the message.
    """

    def make_message(self, channel: str, content: dict, channel_layer: ChannelLayer) -> Any:
        """Return the object handed to ``router.match`` and to the consumer."""
        return RawMessage(content, channel, channel_layer)

    def call(self, consumer: Consumer, message: Any, kwargs: dict[str, Any]) -> None:
        """Run ``consumer`` on ``message``; exceptions propagate to the worker."""
        consumer(message, **kwargs)

    def dispatching(self, channel: str, message: Any, consumer: Consumer) -> None:
        """Called just before a consumer runs (logging, metrics)."""

    def ready(self, worker: Worker) -> None:
        """Called once the worker's threads are about to start receiving."""

    def thread_done(self) -> None:
        """Called by each of the worker's threads as it leaves, after its last message (to free what it holds)."""

    def error(self, channel: str, content: dict, exc: BaseException, channel_layer: ChannelLayer) -> None:
        """Called after a consumer raised (the traceback is already logged).

        The default answers an ``http.request`` with a plain 500 so the
        client is not left waiting for the interface server's timeout.
        """
        reply_channel = content.get("reply_channel")
        if channel == "http.request" and isinstance(reply_channel, str):
            try:
                channel_layer.send(reply_channel, INTERNAL_ERROR)
            except Exception:
                logger.exception("Could not send the 500 response to %s", loggable_name(reply_channel))
