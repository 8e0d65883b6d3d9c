"""Sending to the channel layer without blocking the reactor.

A layer's ``send`` is a synchronous network round trip (Redis). Done in the
reactor thread it stalls every connection for its duration, so the hot-path
sends (``http.request``, ``websocket.*``, ``http.disconnect``) go to a few
sender threads instead. Each connection is pinned to one thread, so its
messages keep their order (``order`` numbers arrive in sequence).

A sender thread takes everything queued for it at once and sends it with
one ``layer.send_batch`` (one round trip per Redis shard, however many
connections the batch serves), so under load the round trips per message
fall as the batches grow, and an idle server still sends each message the
moment it is queued.

What one reactor turn queues goes to one thread in one hand-over: the
thread of the last turn unless it is retrying a full channel. A connection
stays pinned to a thread only while its messages there are unfinished, so
its order holds, and a thread stuck retrying holds up only the connections
waiting on it. Waking a parked thread costs the reactor a futex call, the
sleeping core's wake-up and a fight for the GIL; spreading each turn over
every thread (by connection) paid that up to once per thread per turn, and
sent as many smaller batches.

A caller may pass a *flow* with a send (an
:class:`~interface_server.flow.InboundFlow`): the sender tells it when the
message is done -- sent, or failed for good -- so the connection can stop
reading while too many of its messages are still on their way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, NamedTuple, Protocol

from asgi_backends.base import ChannelLayer, loggable_name
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import Outage, RetryPolicy

from .repeats import RepeatedWarnings

logger = logging.getLogger(__name__)

OnError = Callable[[BaseException], object]


class Flow(Protocol):
    """Told when each message sent with it is done (sent, or failed for good)."""

    def finished(self) -> None:
        """One message is done; called in the sender thread serving its connection."""

    def finished_here(self) -> None:
        """One message is done; called in the reactor thread (inline sends)."""


_STOP = object()

MAX_BATCH = 200
"""Most messages one ``send_batch`` carries."""


class Handover(NamedTuple):
    """What one reactor turn queued for one thread; ``ticket`` counts the thread's hand-overs."""

    ticket: int
    jobs: list


class Job(NamedTuple):
    """One queued send."""

    key: int
    channel: str
    message: dict[str, Any]
    on_error: OnError | None
    retry_full: bool
    flow: Flow | None = None


class Sender:
    """Sends messages on background threads, reporting failures to the reactor.

    Args:
        layer: the channel layer.
        reactor: where ``on_error`` callbacks run (via ``callFromThread``).
        threads: number of sender threads; 0 sends inline in the caller's thread.
        full_retry: seconds a send that hits ``ChannelFull`` is retried when
            the caller asked for retries, with the pauses of
            :class:`asgi_backends.retry.RetryPolicy` (5 ms doubling to 100 ms,
            jittered).
        outage: logs a layer outage (``LayerUnavailable``) once when it
            starts and once when it ends, instead of a line per message;
            shared with the server's reply receiver. Nothing is retried
            for it: each message's ``on_error`` hears of the failure at once.
        warnings: where a failed send without ``on_error`` is logged (in
            the reactor thread), so a burst of them is one line plus a
            count; without it each is logged from the sender thread.
    """

    def __init__(self, layer: ChannelLayer, reactor: Any, threads: int = 4, full_retry: float = 1.0,
                 outage: Outage | None = None, warnings: RepeatedWarnings | None = None) -> None:
        if threads < 0:
            raise ValueError(f"threads must be 0 or more, not {threads!r}")
        if isinstance(full_retry, bool) or not isinstance(full_retry, (int, float)) or full_retry < 0:
            raise ValueError(f"full_retry must be 0 or more seconds, not {full_retry!r}")
        self.layer = layer
        self.reactor = reactor
        self.full_retry = full_retry
        self.full_policy = RetryPolicy(timeout=full_retry)
        self.outage = outage or layer_outage()
        self.warnings = warnings
        self.queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(threads)]
        self.threads = [
            threading.Thread(target=self._run, args=(q,), name=f"layer-sender-{i}", daemon=True)
            for i, q in enumerate(self.queues)
        ]
        # Sends made in one reactor turn (the frames of every socket one poll
        # found readable) reach their thread together, waking it once.
        self._coalesce = threads > 0 and callable(getattr(reactor, "callLater", None))
        self._held: dict[int, list[Job]] = {}
        self._hand_over_scheduled = False
        # Per thread: hand-overs given (reactor thread) and finished (that thread), and
        # whether it is retrying a full channel. Each slot has one writer; ints are atomic.
        self._handed = [0] * threads
        self._finished = [0] * threads
        self._retrying = [False] * threads
        self._turn_index = 0
        # key -> (thread, ticket): where a connection's latest messages went.
        self._pinned: dict[int, tuple[int, int]] = {}
        self._pinned_limit = 1024
        for thread in self.threads:
            thread.start()

    def send(self, key: int, channel: str, message: dict[str, Any], on_error: OnError | None = None,
             retry_full: bool = False, flow: Flow | None = None) -> None:
        """Send ``message`` on ``channel``, after earlier sends with the same ``key``.

        Call it in the reactor thread. ``on_error`` is called in the reactor
        thread with the exception if the send fails (after retries, with
        ``retry_full``). ``flow``, if given, is told when the message is done
        (sent or failed): ``flow.finished()`` in the sender thread, or
        ``flow.finished_here()`` when sending inline.
        """
        if not self.queues:
            self._deliver(channel, message, on_error, retry_full)
            if flow is not None:
                flow.finished_here()
            return
        job = Job(key, channel, message, on_error, retry_full, flow)
        if not self._coalesce:
            self.queues[key % len(self.queues)].put(job)
            return
        if not self._hand_over_scheduled:
            self._hand_over_scheduled = True
            self._turn_index = self._pick_thread()
            self.reactor.callLater(0, self._hand_over)
        pinned = self._pinned.get(key)
        if pinned is not None and self._finished[pinned[0]] < pinned[1]:
            index = pinned[0]  # earlier messages of this connection are still on their way there
        else:
            index = self._turn_index
            self._pinned[key] = (index, self._handed[index] + 1)
        held = self._held.get(index)
        if held is None:
            self._held[index] = [job]
        else:
            held.append(job)

    def _pick_thread(self) -> int:
        """Return the thread for this turn's messages: the last one, unless it is retrying."""
        index = self._turn_index
        retrying = self._retrying
        if not retrying[index]:
            return index
        handed, finished = self._handed, self._finished
        idle = [i for i in range(len(handed)) if not retrying[i] and finished[i] >= handed[i]]
        if idle:
            return idle[0]
        return min(range(len(handed)), key=lambda i: (retrying[i], handed[i] - finished[i]))

    def _hand_over(self) -> None:
        """Give each sender thread what this reactor turn queued for it, in one wake-up."""
        self._hand_over_scheduled = False
        held, self._held = self._held, {}
        handed = self._handed
        for index, jobs in held.items():
            handed[index] += 1
            self.queues[index].put(Handover(handed[index], jobs))
        if len(self._pinned) > self._pinned_limit:
            # Forget connections with nothing in flight (and so those that are gone).
            finished = self._finished
            self._pinned = {key: pin for key, pin in self._pinned.items() if finished[pin[0]] < pin[1]}
            self._pinned_limit = max(1024, 2 * len(self._pinned))

    # -- sender threads --------------------------------------------------------

    def _run(self, jobs: queue.SimpleQueue) -> None:
        index = self.queues.index(jobs)
        finished = self._finished
        carried: list[Job] = []
        stopping = False
        ticket = 0
        while not stopping or carried:
            batch = carried
            if not stopping and len(batch) < MAX_BATCH:
                try:
                    # Block only when nothing is carried over from the last batch.
                    job = jobs.get() if not batch else jobs.get_nowait()
                    while True:
                        if job is _STOP:
                            stopping = True
                            break
                        if type(job) is Handover:
                            batch.extend(job.jobs)
                            ticket = job.ticket
                        else:
                            batch.append(job)
                        if len(batch) >= MAX_BATCH:
                            break
                        job = jobs.get_nowait()
                except queue.Empty:
                    pass
            if not batch:
                continue
            batch, carried = split_batch(batch)
            try:
                self._send_batch(batch, index)
            except Exception:  # a bug here must not end the thread: log it, carry on
                logger.exception("Sending a batch of %d messages failed", len(batch))
            if not carried:
                # Everything handed over up to this ticket is done: its connections may move.
                finished[index] = ticket

    def _send_batch(self, batch: list[Job], index: int = 0) -> None:
        layer = self.layer
        try:
            results = layer.send_batch([(job.channel, job.message) for job in batch])
        except Exception as exc:
            # Redis down and the like: every message of the batch met it.
            if isinstance(exc, LayerUnavailable):
                self.outage.failed(exc)
            results = [exc] * len(batch)
        else:
            self.outage.succeeded()
        retry: list[tuple[Job, BaseException]] = []
        for job, result in zip(batch, results):
            if result is not None:
                if job.retry_full and isinstance(result, layer.ChannelFull):
                    retry.append((job, result))
                    continue
                self._failed(job.channel, job.on_error, result)
            if job.flow is not None:
                job.flow.finished()
        if retry:
            self._retrying[index] = True
            try:
                self._retry(retry)
            finally:
                self._retrying[index] = False

    def _retry(self, refused: list[tuple[Job, BaseException]]) -> None:
        """Retry sends that found their channel full, under ``full_policy``, in one batch per try.

        ``refused`` pairs each job with its ``ChannelFull``; what is still
        refused at the deadline is reported with its last one. The thread's
        other connections wait meanwhile, as do the retried connections'
        later messages (:func:`split_batch` held those back), so every
        connection's order is kept.
        """
        layer = self.layer
        backoff = self.full_policy.backoff()
        while refused:
            pause = backoff.next_pause()
            if pause is None:
                for job, exc in refused:
                    self._failed(job.channel, job.on_error, exc)
                    if job.flow is not None:
                        job.flow.finished()
                return
            time.sleep(pause)  # a pause between attempts on a full channel, not a wait for an event
            jobs = [job for job, _ in refused]
            try:
                results = layer.send_batch([(job.channel, job.message) for job in jobs])
            except Exception as exc:
                if isinstance(exc, LayerUnavailable):
                    self.outage.failed(exc)
                results = [exc] * len(jobs)
            refused = []
            for job, result in zip(jobs, results):
                if result is not None:
                    if isinstance(result, layer.ChannelFull):
                        refused.append((job, result))
                        continue
                    self._failed(job.channel, job.on_error, result)
                if job.flow is not None:
                    job.flow.finished()

    def _failed(self, channel: str, on_error: OnError | None, exc: BaseException) -> None:
        if on_error is None:
            if isinstance(exc, LayerUnavailable):
                # The outage's own line says so; one per message would flood the log.
                logger.debug("Could not send on %s: %s", loggable_name(channel), exc)
            elif self.warnings is not None:
                self.reactor.callFromThread(self.warnings.warn, logger, "Could not send on %s: %s",
                                            loggable_name(channel), exc)
            else:
                logger.warning("Could not send on %s: %s", loggable_name(channel), exc)
        else:
            self.reactor.callFromThread(on_error, exc)

    # -- inline sends (no sender threads) ---------------------------------------

    def _deliver(self, channel: str, message: dict[str, Any], on_error: OnError | None, retry_full: bool) -> None:
        """Send in the caller's thread; no retries (they would stall the reactor)."""
        try:
            self.layer.send(channel, message)
        except Exception as exc:
            if on_error is None:
                logger.warning("Could not send on %s: %s", loggable_name(channel), exc)
            else:
                on_error(exc)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to ``timeout``), then stop the threads.

        Call it in the reactor thread, like :meth:`send`.
        """
        self._hand_over()
        for jobs in self.queues:
            jobs.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def layer_outage() -> Outage:
    """The :class:`~asgi_backends.retry.Outage` of one interface server: the lines it logs while its layer is down."""
    return Outage(logger, "Talking to the channel layer",
                  meanwhile="HTTP requests get 503 and WebSocket messages close with 1013 until it answers")


def split_batch(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """Split queued jobs into what one ``send_batch`` may carry and what must wait.

    A message retried on ``ChannelFull`` must stay ahead of its connection's
    later messages. The layer refuses later messages to a channel after a
    refused one, so those come back to be retried in order; a later message
    of the same connection to *another* channel would not, so from there on
    that connection's messages wait for the next batch.

    Returns:
        ``(now, later)``, each in queue order.
    """
    now: list[Job] = []
    later: list[Job] = []
    held: set[int] = set()
    retried_on: dict[int, str] = {}
    for job in jobs:
        if job.key in held:
            later.append(job)
            continue
        channel = retried_on.get(job.key)
        if channel is not None and channel != job.channel:
            held.add(job.key)
            later.append(job)
            continue
        if job.retry_full:
            retried_on[job.key] = job.channel
        now.append(job)
    return now, later
