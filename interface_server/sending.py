"""Sending to the channel layer without blocking the reactor.

A layer's ``send`` is a synchronous network round trip (Redis). Done in the
reactor thread it stalls every connection for its duration, so the hot-path
sends (``http.request``, ``websocket.*``, ``http.disconnect``) go to a few
sender threads instead. Each connection is pinned to one thread, so its
messages keep their order (``order`` numbers arrive in sequence).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

logger = logging.getLogger(__name__)

OnError = Callable[[BaseException], object]

_STOP = object()


class Sender:
    """Sends messages on background threads, reporting failures to the reactor.

    Args:
        layer: the channel layer.
        reactor: where ``on_error`` callbacks run (via ``callFromThread``).
        threads: number of sender threads; 0 sends inline in the caller's thread.
        full_retry: seconds a send that hits ``ChannelFull`` is retried when
            the caller asked for retries.
    """

    def __init__(self, layer: Any, reactor: Any, threads: int = 4, full_retry: float = 1.0) -> None:
        if threads < 0:
            raise ValueError(f"threads must be 0 or more, not {threads!r}")
        self.layer = layer
        self.reactor = reactor
        self.full_retry = full_retry
        self.queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(threads)]
        self.threads = [
            threading.Thread(target=self._run, args=(q,), name=f"layer-sender-{i}", daemon=True)
            for i, q in enumerate(self.queues)
        ]
        for thread in self.threads:
            thread.start()

    def send(self, key: int, channel: str, message: dict[str, Any], on_error: OnError | None = None,
             retry_full: bool = False) -> None:
        """Send ``message`` on ``channel``, after earlier sends with the same ``key``.

        ``on_error`` is called in the reactor thread with the exception if
        the send fails (after retries, with ``retry_full``).
        """
        if not self.queues:
            self._deliver(channel, message, on_error, retry_full, inline=True)
            return
        self.queues[key % len(self.queues)].put((channel, message, on_error, retry_full))

    def _run(self, jobs: queue.SimpleQueue) -> None:
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            self._deliver(*job, inline=False)

    def _deliver(self, channel: str, message: dict[str, Any], on_error: OnError | None, retry_full: bool,
                 inline: bool) -> None:
        layer = self.layer
        try:
            try:
                layer.send(channel, message)
            except layer.ChannelFull:
                if not retry_full or inline:
                    raise
                self._retry(channel, message)
        except Exception as exc:
            if on_error is None:
                logger.warning("Could not send on %s: %s", channel, exc)
            elif inline:
                on_error(exc)
            else:
                self.reactor.callFromThread(on_error, exc)

    def _retry(self, channel: str, message: dict[str, Any]) -> None:
        """Retry a send that found the channel full, briefly, with growing pauses."""
        deadline = time.monotonic() + self.full_retry
        delay = 0.005
        while True:
            time.sleep(delay)  # a pause between attempts on a full channel, not a wait for an event
            try:
                self.layer.send(channel, message)
                return
            except self.layer.ChannelFull:
                if time.monotonic() + delay > deadline:
                    raise
                delay = min(delay * 2, 0.1)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to ``timeout``), then stop the threads."""
        for jobs in self.queues:
            jobs.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
