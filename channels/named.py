"""Consumers of named channels (``ChannelNameRouter``): one instance per channel name per worker process.

Channels 4's ``runworker`` listens on each named channel with a listener
of its own and hands every message of that channel to one application
instance, made with the first message and kept for the process's life, one
message at a time. A worker here does the same: its
:class:`worker.Worker` gives each of the application's named channels a
thread of its own (``ordered_channels``), and :class:`NamedChannels` keeps
the consumer instance of each channel name; it runs in that thread's event
loop (the same one for each message), its synchronous handlers in that
thread. With N worker processes there
are N instances of each named consumer, as with N Channels 4 ``runworker``
processes; a message goes to one of them.

An instance that raises (or raises ``StopConsumer``) is dropped: the
channel's next message gets a new one, as Channels 4 makes a new instance
after one has exited.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from .turns import ASGIApp, Message, Turn, run_deferred_handler, run_turn

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from .layers import AsyncChannelLayer

ThreadLoop = Callable[[], "tuple[asyncio.AbstractEventLoop, ThreadPoolExecutor]"]

logger = logging.getLogger(__name__)

__all__ = ["NamedChannels", "NamedTurn"]


class NamedTurn(Turn):
    """One message of a named channel, handled by the channel's kept instance."""

    __slots__ = ()

    def refuse(self) -> str:
        """Nothing to refuse for a message nobody answers; return what was done, for the log."""
        return f"dropping the message on {self.description}"

    def fail(self) -> str:
        """Drop the instance (:class:`NamedChannels` does); return what happens next, for the log."""
        return f"{self.description} gets a new instance for its next message"


class _Channel:
    """What one named channel keeps: its instances, and a lock so that one message runs at a time."""

    __slots__ = ("lock", "instances")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances: dict[Any, Any] = {}


class NamedChannels:
    """The named channels' consumer instances of one worker process.

    Args:
        thread_loop: returns the calling thread's event loop and the thread
            its synchronous handlers may hand work to.
    """

    def __init__(self, thread_loop: ThreadLoop) -> None:
        self._thread_loop = thread_loop
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}

    def _channel(self, name: str) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            with self._lock:
                channel = self._channels.get(name)
                if channel is None:
                    channel = self._channels[name] = _Channel()
        return channel

    def handle(self, application: ASGIApp, name: str, content: Message, layer: AsyncChannelLayer | None) -> None:
        """Run ``application`` for one message of channel ``name`` on the channel's kept instance.

        One message at a time per channel (callers from other threads
        wait); the worker's dedicated thread for the channel calls this in
        the order the layer gave the messages. What the handler raises is
        logged with its class and method, and the instance is dropped.
        """
        channel = self._channel(name)
        with channel.lock:
            loop, executor = self._thread_loop()
            turn = NamedTurn(content, name, layer, executor=executor, description=f"channel {name}")
            turn.instances = channel.instances
            loop.run_until_complete(run_turn(application, {"type": "channel", "channel": name}, turn))
            if turn.deferred is not None:
                run_deferred_handler(turn)
            if turn.failed or turn.stop:
                channel.instances.clear()

    def instances(self, name: str) -> list[Any]:
        """Return the consumer instances kept for channel ``name`` (none before its first message)."""
        channel = self._channels.get(name)
        return list(channel.instances.values()) if channel is not None else []
