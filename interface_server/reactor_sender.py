"""Sending to the channel layer from inside the reactor, through its non-blocking client.

The threaded :class:`~interface_server.sending.Sender` exists because a
layer's ``send`` blocks. A layer that offers a
:class:`~asgi_backends.base.ReactorLayerClient` (the Redis layer, for plain
hosts) needs no threads: :class:`ReactorSender` gathers what one reactor
turn sends into one ``send_batch`` (one pipelined script call per shard)
and handles the replies when they come, in the same thread, so no message
crosses a thread and nothing wakes a parked core.

The guarantees are the threaded sender's:

* **A connection's messages keep their order.** While a batch holding one
  of its messages is on its way (or being retried on a full channel), its
  later messages wait; they go out in the first batch after it. Batches of
  different connections overlap freely.
* **Full channels are retried** (``retry_full``) under the same
  :class:`~asgi_backends.retry.RetryPolicy`, on the reactor's clock; only
  the refused connections wait meanwhile. A retry sends each channel at
  most twice what it took in the try before (:data:`RETRY_WINDOW` at
  least), in order; the rest wait for the next try. When thousands of
  clients leave at once, their ``websocket.disconnect`` messages meet a
  full channel that drains at a worker's pace: sending all of them on
  every retry would cost the reactor a second of CPU per ten thousand and
  deliver none sooner.
* **Flows hear when each message is done** (``flow.finished_here()``), so
  a connection stops reading while too many of its messages are on their way.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from asgi_backends.base import ChannelLayer, ReactorLayerClient, loggable_name
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import Backoff, Outage, RetryPolicy

from .repeats import RepeatedWarnings
from .sending import MAX_BATCH, Flow, Job, OnError, layer_outage, split_batch

logger = logging.getLogger(__name__)

RETRY_WINDOW = 16
"""Fewest messages a retry sends to one channel: a channel that took none last time still gets this many tries."""


class ReactorSender:
    """Sends messages through a layer's reactor client; every method runs in the reactor thread.

    Args:
        layer: the channel layer (its ``ChannelFull``).
        client: the layer's reactor client.
        reactor: the reactor (turns, retry pauses, the close deadline).
        full_retry: seconds a send refused with ``ChannelFull`` is retried
            when the caller asked for retries (5 ms doubling to 100 ms,
            jittered).
        outage: logs a layer outage once when it starts and once when it ends.
        warnings: where failed sends without ``on_error`` are logged, so a
            burst is one line and a count.
    """

    def __init__(self, layer: ChannelLayer, client: ReactorLayerClient, reactor: Any, full_retry: float = 1.0,
                 outage: Outage | None = None, warnings: RepeatedWarnings | None = None) -> None:
        if isinstance(full_retry, bool) or not isinstance(full_retry, (int, float)) or full_retry < 0:
            raise ValueError(f"full_retry must be 0 or more seconds, not {full_retry!r}")
        self.layer = layer
        self.client = client
        self.reactor = reactor
        self.full_policy = RetryPolicy(timeout=full_retry)
        self.outage = outage or layer_outage()
        self.warnings = warnings
        self._turn: list[Job] = []
        self._scheduled = False
        # Connections with a message on its way, and their later messages (only busy ones have any).
        self._busy: dict[int, int] = {}
        self._held: dict[int, list[Job]] = {}
        self._closed: defer.Deferred | None = None

    @property
    def in_flight(self) -> int:
        """Connections with a message on its way to the layer."""
        return len(self._busy)

    def send(self, key: int, channel: str, message: dict[str, Any], on_error: OnError | None = None,
             retry_full: bool = False, flow: Flow | None = None) -> None:
        """Send ``message`` on ``channel`` after the earlier sends with the same ``key``.

        ``on_error`` is called with the exception if the send fails (after
        the retries, with ``retry_full``); ``flow.finished_here()`` once the
        message is done either way.
        """
        job = Job(key, channel, message, on_error, retry_full, flow)
        held = self._held.get(key)
        if held is not None:
            held.append(job)
            return
        if key in self._busy:
            self._held[key] = [job]
            return
        self._turn.append(job)
        if not self._scheduled:
            self._scheduled = True
            self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """Send what this turn queued: batches of up to :data:`MAX_BATCH`, a connection's messages in one."""
        self._scheduled = False
        jobs, self._turn = self._turn, []
        busy, held = self._busy, self._held
        batch: list[Job] = []
        for job in jobs:
            if job.key in busy:  # its earlier messages went in a batch of this flush
                held.setdefault(job.key, []).append(job)
                continue
            batch.append(job)
            if len(batch) >= MAX_BATCH:
                self._dispatch(batch)
                batch = []
        if batch:
            self._dispatch(batch)

    def _dispatch(self, batch: list[Job]) -> None:
        now, later = split_batch(batch)
        busy, held = self._busy, self._held
        for job in now:
            busy[job.key] = busy.get(job.key, 0) + 1
        for job in later:
            held.setdefault(job.key, []).append(job)
        self._send(now).addCallback(self._sent, now)

    def _send(self, jobs: list[Job]) -> defer.Deferred:
        try:
            return self.client.send_batch([(job.channel, job.message) for job in jobs])
        except Exception as exc:  # a bad channel name or message: every message of the batch met it
            return defer.succeed([exc] * len(jobs))

    def _sent(self, results: list[BaseException | None], jobs: list[Job]) -> None:
        self._settle_all(results, jobs, self.full_policy.backoff(clock=self.reactor.seconds), True, [])

    def _settle_all(self, results: list[BaseException | None], jobs: list[Job], backoff: Backoff,
                    only_asked: bool, waiting: list[tuple[Job, BaseException]]) -> None:
        """Settle each job by its result; retry those refused on a full channel (all of them, or only those that asked).

        ``waiting`` are refused jobs this try did not send (past their
        channel's window), in order behind the sent ones of their channel.
        """
        self._note_outage(results)
        full = self.layer.ChannelFull
        refused: list[tuple[Job, BaseException]] = []
        taken: dict[str, int] = {}
        for job, result in zip(jobs, results):
            if result is not None and isinstance(result, full) and (job.retry_full or not only_asked):
                refused.append((job, result))
                continue
            if result is None:
                taken[job.channel] = taken.get(job.channel, 0) + 1
            self._settle(job, result)
        if refused or waiting:
            self._retry(refused + waiting, backoff, taken)

    def _retry(self, refused: list[tuple[Job, BaseException]], backoff: Backoff, taken: dict[str, int]) -> None:
        """Send ``refused`` again after the next pause, or report each with its last refusal once time is up.

        Each channel gets up to twice what it ``taken`` in the last try
        (at least :data:`RETRY_WINDOW`); the rest of its jobs wait, in order.
        """
        pause = backoff.next_pause()
        if pause is None:
            for job, exc in refused:
                self._settle(job, exc)
            return
        now: list[Job] = []
        waiting: list[tuple[Job, BaseException]] = []
        room: dict[str, int] = {}
        for job, exc in refused:
            channel = job.channel
            left = room.get(channel)
            if left is None:
                left = max(RETRY_WINDOW, 2 * taken.get(channel, 0))
            if left:
                now.append(job)
                room[channel] = left - 1
            else:
                room[channel] = 0
                waiting.append((job, exc))
        self.reactor.callLater(pause, self._resend, now, waiting, backoff)

    def _resend(self, jobs: list[Job], waiting: list[tuple[Job, BaseException]], backoff: Backoff) -> None:
        self._send(jobs).addCallback(self._settle_all, jobs, backoff, False, waiting)

    def _settle(self, job: Job, result: BaseException | None) -> None:
        """``job`` is done (sent, or failed for good): report it, and let its connection's next messages go."""
        if result is not None:
            self._failed(job.channel, job.on_error, result)
        if job.flow is not None:
            job.flow.finished_here()
        key = job.key
        busy = self._busy
        left = busy[key] - 1
        if left:
            busy[key] = left
            return
        del busy[key]
        held = self._held.pop(key, None)
        if held is not None:
            self._turn.extend(held)
            if not self._scheduled:
                self._scheduled = True
                self.reactor.callLater(0, self._flush)
        elif not busy and self._closed is not None and not self._closed.called:
            self._closed.callback(None)

    def _note_outage(self, results: list[BaseException | None]) -> None:
        for result in results:
            if isinstance(result, LayerUnavailable):
                self.outage.failed(result)
                return
        self.outage.succeeded()

    def _failed(self, channel: str, on_error: OnError | None, exc: BaseException) -> None:
        if on_error is None:
            if isinstance(exc, LayerUnavailable):
                # The outage's own line says so; one per message would flood the log.
                logger.debug("Could not send on %s: %s", loggable_name(channel), exc)
            elif self.warnings is not None:
                self.warnings.warn(logger, "Could not send on %s: %s", loggable_name(channel), exc)
            else:
                logger.warning("Could not send on %s: %s", loggable_name(channel), exc)
            return
        try:
            on_error(exc)
        except Exception:
            logger.exception("Handling a failed send on %s failed", loggable_name(channel))

    def close(self, timeout: float = 2.0) -> defer.Deferred:
        """Send what is queued; return a Deferred firing once it is all done, or after ``timeout`` seconds."""
        if self._scheduled or self._turn:
            self._flush()
        closed = self._closed = defer.Deferred()
        if not self._busy:
            closed.callback(None)
            return closed
        deadline = self.reactor.callLater(timeout, self._give_up, len(self._busy))

        def done(result: object) -> object:
            if deadline.active():
                deadline.cancel()
            return result

        return closed.addBoth(done)

    def _give_up(self, waiting: int) -> None:
        if self._closed is not None and not self._closed.called:
            logger.warning("Stopped with messages of %d connection(s) still on their way to the layer", waiting)
            self._closed.callback(None)
