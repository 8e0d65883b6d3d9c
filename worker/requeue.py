"""Delayed re-sends for messages whose consumer raised ``ConsumeLater``.

Putting such a message straight back would make a worker that is alone on
the channel pick it up again at once and spin on it. Instead each retry is
scheduled a little later than the previous one (10 ms, 20 ms, 40 ms, ...
capped at one second); one timer thread per worker process does the sends.
A re-send that finds its channel full is rescheduled the same way, with
jitter (:data:`FULL_RETRY`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time

from asgi_backends.base import ChannelLayer, loggable_name
from asgi_backends.retry import RetryPolicy

logger = logging.getLogger(__name__)

RETRIES_KEY = "__retries__"

CONSUME_LATER_BACKOFF = RetryPolicy(first_delay=0.01, max_delay=1.0, jitter=0.0)
"""The pauses before the re-sends of a message whose consumer raised ``ConsumeLater``."""

FULL_RETRY = RetryPolicy(first_delay=0.01, max_delay=1.0)
"""The pauses before the tries of a re-send whose channel was full (the same, jittered).

Re-sends are rescheduled, not waited for, so only the schedule is used; the
number of tries is ``Requeuer.full_retries``.
"""


def retry_delay(attempt: int, base: float = 0.01, cap: float = 1.0) -> float:
    """Return how long to hold a message before its ``attempt``-th re-send (exactly: no jitter)."""
    policy = CONSUME_LATER_BACKOFF
    if (base, cap) != (policy.first_delay, policy.max_delay):
        policy = RetryPolicy(first_delay=base, max_delay=cap, jitter=0.0)
    return policy.delay(max(1, attempt))


class Requeuer:
    """Re-sends messages to their channel after a delay, from one daemon thread.

    Args:
        channel_layer: where to send.
        full_retries: how many times a re-send that meets ``ChannelFull`` is
            tried again (after the pauses of :data:`FULL_RETRY`) before the
            message is dropped.
    """

    def __init__(self, channel_layer: ChannelLayer, full_retries: int = 10) -> None:
        self.channel_layer = channel_layer
        self.full_retries = full_retries
        self._heap: list[tuple[float, int, str, dict, int]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, channel: str, content: dict, delay: float, full_attempt: int = 0) -> None:
        """Send ``content`` to ``channel`` after ``delay`` seconds."""
        with self._cond:
            if self._closed:
                logger.warning("Worker stopping: dropping retry of a message on %s", loggable_name(channel))
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), channel, content, full_attempt))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="worker-requeue", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        """Return how many messages wait for their re-send."""
        with self._cond:
            return len(self._heap)

    def close(self, flush: bool = True) -> None:
        """Stop the timer thread; with ``flush``, send what is still waiting now."""
        with self._cond:
            self._closed = True
            waiting, self._heap = self._heap, []
            self._cond.notify()
        if flush:
            for _, _, channel, content, _ in sorted(waiting):
                self._send(channel, content, self.full_retries)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, channel, content, full_attempt = heapq.heappop(self._heap)
            if not self._send(channel, content, full_attempt):
                self.schedule(channel, content, FULL_RETRY.delay(full_attempt + 1), full_attempt + 1)

    def _send(self, channel: str, content: dict, full_attempt: int) -> bool:
        """Send now; return False if the channel was full and a retry is allowed."""
        try:
            self.channel_layer.send(channel, content)
        except self.channel_layer.ChannelFull:
            if full_attempt < self.full_retries:
                return False
            logger.warning("Dropping a retried message: channel %s stayed full", loggable_name(channel))
        except Exception:
            logger.exception("Could not put a retried message back on %s", loggable_name(channel))
        return True
