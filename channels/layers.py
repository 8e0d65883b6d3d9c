"""The Channels 2-4 channel layer API: awaitable methods over this project's layers.

Channels 2 made every channel layer method a coroutine
(``await layer.send(...)``, ``async_to_sync(layer.group_send)(...)``).
:func:`get_channel_layer` returns an :class:`AsyncChannelLayer` over the
configured backend, so code written for that API runs unchanged::

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    def notify(request):
        async_to_sync(get_channel_layer().group_send)("chat_lobby", {"type": "chat.message", "message": "hi"})

Each method runs the backend's (synchronous) operation in the calling
thread: the worker runs one consumer event at a time per thread, so there
is nothing else for the event loop to do meanwhile, and no thread hop is
paid. :meth:`AsyncChannelLayer.receive` is the exception: it waits in an
executor thread, so it does not stall a loop serving other tasks (tests).

The historical ``channels.layers.InMemoryChannelLayer`` path and
``channels_redis.core.RedisChannelLayer`` resolve to this project's layers
(see :data:`channels.asgi.BACKEND_ALIASES`).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from asgi_backends.base import ChannelLayer
from asgi_backends.exceptions import ChannelFull, MessageTooLarge  # noqa: F401 -- Channels exposes them here

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .consumer import note_async_to_sync

__all__ = ["AsyncChannelLayer", "InMemoryChannelLayer", "get_channel_layer"]

RECEIVE_WAIT = 1.0
"""Seconds one blocking receive of :meth:`AsyncChannelLayer.receive` waits before it tries again."""


class AsyncChannelLayer:
    """A channel layer with the Channels 2-4 (awaitable) API.

    Args:
        backend: this project's layer (any :class:`~asgi_backends.base.ChannelLayer`).
        alias: the ``CHANNEL_LAYERS`` alias it was configured under.

    Every method of the backend not named here is reachable as an
    attribute (``layer.extensions``, ``layer.capacity``...).
    """

    def __init__(self, backend: ChannelLayer, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        if not isinstance(backend, ChannelLayer):
            raise TypeError(f"backend must be a channel layer (asgi_backends.base.ChannelLayer), not {backend!r}")
        self.backend = backend
        self.alias = alias
        self.ChannelFull = backend.ChannelFull
        self.MessageTooLarge = backend.MessageTooLarge

    def __getattr__(self, name: str) -> Any:
        if name == "backend":  # not set yet: do not recurse
            raise AttributeError(name)
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<AsyncChannelLayer {self.alias} over {type(self.backend).__name__}>"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``channel``.

        Raises:
            ChannelFull: the channel is at capacity.
            TypeError: the name or message is invalid.
        """
        note_async_to_sync()
        self.backend.send(channel, message)

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (membership expires after the layer's ``group_expiry``)."""
        note_async_to_sync()
        self.backend.group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        note_async_to_sync()
        self.backend.group_discard(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every member of ``group`` (a full member misses it; nothing is raised)."""
        note_async_to_sync()
        self.backend.send_group(group, message)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new channel name this process may receive on with :meth:`receive`."""
        base = prefix if prefix.endswith(".") else prefix + "."
        return self.backend.new_channel(f"{base}{secrets.token_hex(6)}!")

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for and return the next message on ``channel``."""
        loop = asyncio.get_running_loop()
        backend = self.backend
        while True:
            name, message = await loop.run_in_executor(None, _receive_one, backend, channel)
            if name is not None and message is not None:
                return message

    async def flush(self) -> None:
        """Delete every message and group of the layer."""
        self.backend.flush()

    async def close(self) -> None:
        """Nothing to close: connections are pooled by the backend for the whole process."""


def _receive_one(backend: ChannelLayer, channel: str) -> tuple[str | None, dict[str, Any] | None]:
    """One blocking receive; a process-specific name is received through its prefix (its own, from new_channel)."""
    bang = channel.find("!")
    listen = channel if bang < 0 else channel[: bang + 1]
    name, message = backend.receive([listen], block=True)
    if name is not None and name != channel:
        return None, None  # another name under the prefix: not ours to give
    return name, message


_facades: dict[str, AsyncChannelLayer] = {}


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> AsyncChannelLayer | None:
    """Return the layer configured as ``alias`` with the awaitable API, or None if it is not configured.

    The same object is returned for the same configured backend (a test
    that swaps the layer with ``channel_layers.override`` gets a new one).
    """
    if alias not in channel_layers:
        return None
    backend = channel_layers[alias].channel_layer
    facade = _facades.get(alias)
    if facade is None or facade.backend is not backend:
        facade = _facades[alias] = AsyncChannelLayer(backend, alias)
    return facade


def InMemoryChannelLayer(**config: Any) -> ChannelLayer:  # noqa: N802 - the Channels 2-4 class name
    """Build this project's in-memory layer from a Channels 2-4 ``InMemoryChannelLayer`` CONFIG.

    ``expiry``, ``group_expiry`` and ``capacity`` keep their meaning;
    ``channel_capacity`` too.
    """
    from asgi_backends.inmemory import ChannelLayer as InMemory

    return InMemory(**config)
