"""Django's side of the worker: hooks that build Messages and buffer sends.

:class:`ChannelsHooks` plugs into :class:`worker.Worker`: it wraps each
consumer call with the ``consumer_started``/``consumer_finished`` signals
and the outbox (sends held until the consumer returns), handles
``DenyConnection`` and ``ChannelSocketException``, and accepts a WebSocket
whose connect consumer left it undecided (``CHANNELS_WS_AUTO_ACCEPT``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from django.db import close_old_connections

from worker import Worker as _Worker
from worker import WorkerHooks

from . import settings as channel_settings
from .exceptions import ChannelSocketException, DenyConnection
from .message import Message
from .outbox import outbox
from .signals import consumer_finished, consumer_started, worker_ready
from .utils import name_that_thing

logger = logging.getLogger(__name__)

ACCEPT = {"accept": True}


class ChannelsHooks(WorkerHooks):
    """Worker hooks for Django projects.

    Args:
        auto_accept: accept undecided ``websocket.connect`` handshakes;
            ``None`` reads ``CHANNELS_WS_AUTO_ACCEPT`` (once).
        log_consumers: log each consumer run at INFO (``runworker -v 2``).
    """

    def __init__(self, auto_accept: bool | None = None, log_consumers: bool = False) -> None:
        self.auto_accept = channel_settings.ws_auto_accept() if auto_accept is None else auto_accept
        self.log_consumers = log_consumers
        self.has_databases = has_real_databases()

    def make_message(self, channel: str, content: dict, channel_layer: Any) -> Message:
        return Message(content, channel, channel_layer)

    def dispatching(self, channel: str, message: Any, consumer: Any) -> None:
        if self.log_consumers:
            logger.info("%s (reply %s) -> %s", channel, message.content.get("reply_channel"), name_that_thing(consumer))

    def ready(self, worker: Any) -> None:
        worker_ready.send(sender=type(worker), worker=worker)

    def error(self, channel: str, content: dict, exc: BaseException, channel_layer: Any) -> None:
        """After a consumer raised: a 500 for HTTP; a refused handshake for ``websocket.connect``."""
        super().error(channel, content, exc, channel_layer)
        reply_channel = content.get("reply_channel")
        if channel == "websocket.connect" and isinstance(reply_channel, str):
            try:
                channel_layer.send(reply_channel, {"close": True})
            except Exception:
                logger.exception("Could not refuse the WebSocket handshake on %s", reply_channel)

    def call(self, consumer: Any, message: Message, kwargs: dict[str, Any]) -> None:
        is_connect = message.channel.name == "websocket.connect"
        reply = message.reply_channel
        # Django's view handler tidies database connections around the request
        # itself (request_started/finished); every other consumer gets it here.
        tidy = self.has_databases and not getattr(consumer, "manages_db_connections", False)
        if tidy:
            close_old_connections()
        consumer_started.send(sender=Worker, message=message, environ={})
        outbox.begin(watch=reply.name if (is_connect and reply is not None) else None)
        try:
            consumer(message, **kwargs)
        except DenyConnection:
            outbox.discard()
            if not is_connect or reply is None:
                raise ValueError("DenyConnection can only be raised by a websocket.connect consumer") from None
            reply.send({"close": True})
        except ChannelSocketException as exc:
            outbox.discard()
            exc.run(message)
        except BaseException:
            outbox.discard()
            raise
        else:
            first = None
            if is_connect and reply is not None and self.auto_accept and not outbox.answered:
                first = [(reply, ACCEPT)]
            outbox.flush(first)
        finally:
            if outbox.active:
                outbox.end()
            consumer_finished.send(sender=Worker, message=message)
            if tidy:
                close_old_connections()


class Worker(_Worker):
    """A :class:`worker.Worker` for a Django layer (from :func:`channels.asgi.get_channel_layer`).

    Args:
        channel_layer: a layer with a ``router`` attribute.
        hooks: defaults to :class:`ChannelsHooks`.
        **kwargs: ``threads``, ``only_channels``, ``exclude_channels``,
            ``message_retries``, ``signal_handlers`` as for :class:`worker.Worker`.
    """

    def __init__(self, channel_layer: Any, hooks: WorkerHooks | None = None,
                 router: Any = None, **kwargs: Any) -> None:
        router = router if router is not None else getattr(channel_layer, "router", None)
        if router is None:
            raise ValueError(f"Channel layer {channel_layer!r} has no router; get it from channels.asgi.get_channel_layer()")
        super().__init__(channel_layer, router, hooks or ChannelsHooks(), **kwargs)


def has_real_databases() -> bool:
    """Return True if settings.DATABASES holds a real database (not only Django's dummy)."""
    from django.db import connections

    return any(connections.settings[alias]["ENGINE"] != "django.db.backends.dummy" for alias in connections)


def channels_of(layer: Any, only: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> list[str]:
    """Return the channels a worker for ``layer`` would listen on."""
    from worker.worker import filter_channels

    return filter_channels(layer.router.channels, only, exclude)
