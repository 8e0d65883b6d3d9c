"""What :class:`~.websocket.WebsocketCommunicator` and :class:`~.http.HttpCommunicator` share.

Both play the interface server for one connection: a channel name of its
own on the configured layer, the ASGI messages the application sent so far,
and the exception a handler raised, raised again by the test's next call.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from ..turns import Message

POLL = 0.005
"""Seconds between looks at the channel layer for events sent to the connection."""


class Communicator:
    """The part of a communicator that waits for the application's output.

    Args:
        application: the ASGI application under test.

    Subclasses run the connection's events and implement
    :meth:`_pump_layer`; :attr:`speaker` names the application in timeouts.
    """

    speaker = "the application"

    def __init__(self, application: Any) -> None:
        from ..layers import get_channel_layer

        self.application = application
        self.layer = get_channel_layer()
        prefix = f"communicator.{secrets.token_hex(6)}!"
        self.channel_name = self.layer.backend.new_channel(prefix) if self.layer is not None else prefix + "local"
        self._prefix = prefix
        self._outputs: asyncio.Queue[Message] = asyncio.Queue()
        self._error: BaseException | None = None
        self._lock = asyncio.Lock()

    async def _pump_layer(self) -> bool:
        """Deliver what waits on the connection's channel; return True if there was something."""
        raise NotImplementedError

    def _took(self, output: Message) -> None:
        """``output`` is about to be returned to the test (a subclass notes a close, say)."""

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def receive_output(self, timeout: float = 1) -> Message:
        """Return the next ASGI message the application sent (delivering typed events meanwhile).

        Raises:
            TimeoutError: nothing within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._raise_error()
            if not self._outputs.empty():
                output = self._outputs.get_nowait()
                self._took(output)
                return output
            if await self._pump_layer():
                continue
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.speaker} sent nothing within {timeout}s")
            await asyncio.sleep(POLL)

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """Return True if the application sends nothing within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_error()
            if not self._outputs.empty() or await self._pump_layer() and not self._outputs.empty():
                return False
            await asyncio.sleep(interval)
        return self._outputs.empty()

    async def wait(self, timeout: float = 1) -> None:
        """Nothing runs in the background: raise what the last event raised, if anything."""
        self._raise_error()
