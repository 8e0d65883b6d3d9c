"""Sends made while a consumer runs are held here and flushed when it returns.

A consumer that raises (or raises ``ConsumeLater``) therefore sends nothing
half-way. ``Channel.send(..., immediately=True)`` bypasses the outbox.
The outbox is per thread; outside a consumer sends go out at once.

It also remembers whether the consumer answered a ``websocket.connect``
(accepted, rejected, closed or sent a frame), which is how the worker knows
to accept a connection its consumer left undecided.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from asgi_backends.base import ChannelLayer
from asgi_backends.retry import RetryPolicy, policy_for, send_retrying
from worker.fetch import Fetch

logger = logging.getLogger(__name__)

#: keys that, sent on a WebSocket reply channel, settle its handshake
ANSWER_KEYS = ("accept", "close", "text", "bytes")


class Outbox:
    """The held sends of the consumer running in the current thread.

    Attributes:
        retry_time: seconds a held send that meets ``ChannelFull`` is
            retried (under :mod:`asgi_backends.retry`'s policy) before the
            flush gives up on it.
    """

    retry_time = 2.0

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def active(self) -> bool:
        """True while a consumer runs in this thread."""
        return getattr(self._local, "entries", None) is not None

    def begin(self, watch: str | None = None) -> None:
        """Start holding sends; ``watch`` is a reply channel whose answers are noted."""
        self._local.entries = []
        self._local.after = []
        self._local.watch = watch
        self._local.answered = False

    def add(self, target: Any, content: dict) -> None:
        """Hold ``content`` for ``target`` (a :class:`Channel` or :class:`Group`)."""
        self._local.entries.append((target, content))

    def note_send(self, channel_name: str, content: dict) -> None:
        """Record that ``content`` went (or will go) to ``channel_name``."""
        local = self._local
        if getattr(local, "watch", None) == channel_name and any(key in content for key in ANSWER_KEYS):
            local.answered = True

    @property
    def answered(self) -> bool:
        """True if the watched reply channel was sent an answer."""
        return getattr(self._local, "answered", False)

    def after_flush(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the held sends went out (at once if none are held)."""
        if self.active:
            self._local.after.append(callback)
        else:
            callback()

    def flush(self, first: list[tuple[Any, dict]] | None = None, fetch: Fetch | None = None) -> None:
        """Send everything held (``first`` before the rest), then run the callbacks.

        Consecutive sends to channels go out with one ``send_batch`` (one
        round trip); group sends one by one, in their place. When the last
        of them are sends to channels, ``fetch`` (the worker's next
        receive) travels with their batch. A send that
        meets ``ChannelFull`` is retried for up to ``retry_time`` (with the
        backoff of :class:`asgi_backends.retry.RetryPolicy`), after the
        later sends to that channel and before anything after the batch.

        Raises:
            RuntimeError: a channel stayed full; the sends after the batch
                it was in are lost.
            MessageTooLarge, TypeError: a held message could not be sent;
                likewise.
        """
        entries = (first or []) + self._local.entries
        after = self._local.after
        self.end()
        try:
            index = 0
            while index < len(entries):
                target = entries[index][0]
                layer = target.channel_layer
                end = index + 1
                if target.layer_method == "send":
                    while (end < len(entries) and entries[end][0].layer_method == "send"
                           and entries[end][0].channel_layer is layer):
                        end += 1
                last = fetch if end == len(entries) and target.layer_method == "send" else None
                if end - index == 1 and last is None:
                    self._send(target, entries[index][1])
                else:
                    self._send_batch(layer, entries[index:end], last)
                index = end
        finally:
            for callback in after:
                callback()

    def discard(self) -> None:
        """Drop the held sends (the consumer failed) but still run the callbacks."""
        after = getattr(self._local, "after", [])
        self.end()
        for callback in after:
            callback()

    def end(self) -> None:
        """Stop holding sends in this thread."""
        self._local.entries = None
        self._local.after = []
        self._local.watch = None

    def _retry_policy(self) -> RetryPolicy:
        return policy_for(self.retry_time)

    def _stayed_full(self, target: Any) -> RuntimeError:
        return RuntimeError(
            f"Could not send a held message to {target}: it stayed full for {self.retry_time}s. "
            "Consume faster, raise the channel's capacity, or send with immediately=True "
            "and handle ChannelFull yourself."
        )

    def _send_batch(self, layer: ChannelLayer, entries: list[tuple[Any, dict]], fetch: Fetch | None = None) -> None:
        """Send held messages to channels of one layer in one batch (with ``fetch``), retrying full ones."""
        pending = entries
        backoff = None
        failures: dict[int, BaseException] = {}
        while True:
            items = [(target.name, content) for target, content in pending]
            results = fetch.send_batch(layer, items) if fetch is not None else None
            if results is None:
                results = layer.send_batch(items)
            full = []
            for entry, result in zip(pending, results):
                if isinstance(result, layer.ChannelFull):
                    full.append(entry)
                elif result is not None:
                    failures[id(entry)] = result
            if not full:
                break
            if backoff is None:
                backoff = self._retry_policy().backoff()
            pause = backoff.next_pause()
            if pause is None:
                for entry in full:
                    failures[id(entry)] = self._stayed_full(entry[0])
                break
            time.sleep(pause)  # the channel is full: give its reader time
            pending = full
        for entry in entries:  # the first failure in the order the consumer sent
            if id(entry) in failures:
                raise failures[id(entry)]

    def _send(self, target: Any, content: dict) -> None:
        layer = target.channel_layer
        if target.layer_method != "send":
            getattr(layer, target.layer_method)(target.name, content)  # send_group: never ChannelFull
            return
        try:
            send_retrying(layer, target.name, content, self._retry_policy())
        except layer.ChannelFull:
            raise self._stayed_full(target) from None


outbox = Outbox()
