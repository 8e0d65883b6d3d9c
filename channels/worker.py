"""Django's side of the worker: hooks that build Messages and buffer sends.

:class:`ChannelsHooks` plugs into :class:`worker.Worker`: it wraps each
consumer call with the ``consumer_started``/``consumer_finished`` signals
and the outbox (sends held until the consumer returns), handles
``DenyConnection`` and ``ChannelSocketException``, and accepts a WebSocket
whose connect consumer left it undecided (``CHANNELS_WS_AUTO_ACCEPT``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from django.db import close_old_connections

from asgi_backends.base import ChannelLayer, loggable_name
from worker import Worker as _Worker
from worker import WorkerHooks
from worker.fetch import current_fetch

from . import settings as channel_settings
from .asgi import ChannelLayerWrapper
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
        callback: called with ``(channel name, message)`` before each
            consumer runs (Channels 1.x's ``Worker(callback=...)``).
    """

    def __init__(self, auto_accept: bool | None = None, log_consumers: bool = False,
                 callback: Callable[[str, Message], object] | None = None) -> None:
        self.auto_accept = channel_settings.ws_auto_accept() if auto_accept is None else auto_accept
        self.log_consumers = log_consumers
        self.callback = callback
        self.has_databases = has_real_databases()

    def make_message(self, channel: str, content: dict, channel_layer: ChannelLayer) -> Message:
        return Message(content, channel, channel_layer)

    def dispatching(self, channel: str, message: Any, consumer: Any) -> None:
        if self.log_consumers:
            logger.info("%s (reply %s) -> %s", channel, loggable_name(message.content.get("reply_channel")),
                        name_that_thing(consumer))
        if self.callback is not None:
            self.callback(channel, message)

    def ready(self, worker: Any) -> None:
        worker_ready.send(sender=type(worker), worker=worker)

    def thread_done(self) -> None:
        """Close the event loop the thread ran Channels 2-4 consumers in, if it did."""
        from .application import close_thread_loop

        close_thread_loop()

    def error(self, channel: str, content: dict, exc: BaseException, channel_layer: ChannelLayer) -> None:
        """After a consumer raised: a 500 for HTTP; a refused handshake for ``websocket.connect``."""
        super().error(channel, content, exc, channel_layer)
        reply_channel = content.get("reply_channel")
        if channel == "websocket.connect" and isinstance(reply_channel, str):
            try:
                channel_layer.send(reply_channel, {"close": True})
            except Exception:
                logger.exception("Could not refuse the WebSocket handshake on %s", loggable_name(reply_channel))

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
            # A consumer that answers on its own terms (a Channels 2-4 application) is never auto-accepted.
            if is_connect and reply is not None and self.auto_accept and not outbox.answered \
                    and not getattr(consumer, "manages_replies", False):
                first = [(reply, ACCEPT)]
            outbox.flush(first, current_fetch())
        finally:
            if outbox.active:
                outbox.end()
            consumer_finished.send(sender=Worker, message=message)
            if tidy:
                close_old_connections()


class Worker(_Worker):
    """A :class:`worker.Worker` for a configured Django layer.

    Args:
        channel_layer: a :class:`~channels.asgi.ChannelLayerWrapper` (what
            ``channel_layers[alias]`` returns), whose router is used; or a
            bare backend layer together with ``router``.
        hooks: defaults to :class:`ChannelsHooks`.
        router: routes messages instead of the wrapper's router (runserver
            wraps it to serve static files); its ``ordered_channels`` (the
            application's named channels) get a thread each.
        **kwargs: ``threads``, ``prefetch``, ``only_channels``,
            ``exclude_channels``, ``message_retries``, ``signal_handlers``
            as for :class:`worker.Worker`.

    Raises:
        ValueError: a bare layer was given without a router.
    """

    def __init__(self, channel_layer: ChannelLayerWrapper | ChannelLayer, hooks: WorkerHooks | None = None,
                 router: Any = None, callback: Callable[[str, Message], object] | None = None,
                 **kwargs: Any) -> None:
        if hooks is not None and callback is not None:
            raise ValueError("give either hooks or callback (the callback belongs to the hooks)")
        if "message_retrys" in kwargs:  # Channels 1.x's spelling
            kwargs["message_retries"] = kwargs.pop("message_retrys")
        if router is None:
            if not isinstance(channel_layer, ChannelLayerWrapper):
                raise ValueError(
                    f"{channel_layer!r} is a bare channel layer: pass channel_layers[alias] (which carries "
                    "the routing) or give router="
                )
            router = channel_layer.router
        kwargs.setdefault("ordered_channels", router.ordered_channels)
        super().__init__(channel_layer, router, hooks or ChannelsHooks(callback=callback), **kwargs)

    def ready(self) -> None:
        """Channels 1.x called this before :meth:`run`; kept so such code runs.

        ``worker_ready`` is sent by :meth:`run` itself, once the receiving
        threads start, so this only logs.
        """
        logger.debug("Worker for %s ready; run() announces it", self.channel_layer)


class WorkerGroup(Worker):
    """Channels 1.x's multi-threaded worker: a :class:`Worker` with ``n_threads`` threads.

    Args:
        channel_layer, hooks, router, callback: as for :class:`Worker`.
        n_threads: consumer threads (default: the number of CPUs).
        **kwargs: as for :class:`Worker`.

    Raises:
        ValueError: ``n_threads`` is not a positive integer.
    """

    def __init__(self, channel_layer: ChannelLayerWrapper | ChannelLayer, hooks: WorkerHooks | None = None,
                 router: Any = None, callback: Callable[[str, Message], object] | None = None,
                 n_threads: int | None = None, **kwargs: Any) -> None:
        import os

        threads = n_threads if n_threads is not None else (os.cpu_count() or 1)
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"n_threads must be a positive integer, not {n_threads!r}")
        super().__init__(channel_layer, hooks, router, callback, threads=threads, **kwargs)


def has_real_databases() -> bool:
    """Return True if settings.DATABASES holds a real database (not only Django's dummy)."""
    from django.db import connections

    return any(connections.settings[alias]["ENGINE"] != "django.db.backends.dummy" for alias in connections)


def channels_of(layer: ChannelLayerWrapper, only: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> list[str]:
    """Return the channels a worker for ``layer`` would listen on."""
    from worker.worker import filter_channels

    return filter_channels(layer.router.channels, only, exclude)
