"""The worker: receive from the routed channels, run consumers, repeat.

One :class:`Worker` owns a pool of threads. Each takes its next message in
the round trip that sends its consumer's answer
(``channel_layer.send_batch_and_receive``, see :mod:`worker.fetch`) and
blocks in ``channel_layer.receive_batch(channels, ..., block=True)`` only
with nothing in hand; nothing sleep-polls. (Several threads sharing
prefetched messages have one more thread receiving for them all.) A
private process-specific *control channel* is listened on as well, so that a
shutdown can wake every blocked thread at once instead of waiting out the
layer's blocking timeout.

*Ordered* channels (Channels 2-4's named channels, which Channels 4's
``runworker`` serves with one listener each) get a thread of their own
that receives from that channel alone and runs its messages one at a time,
in the order the layer gives them; the other threads never take them.

Shutdown: the first ``SIGTERM``/``SIGINT`` only sets a flag; each thread
finishes the message in hand and leaves; :meth:`Worker.run` then returns. A
second signal ends the process at once.
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import logging
import os
import queue
import secrets
import signal
import threading
from typing import Any, Iterable, Protocol

from asgi_backends.base import ChannelLayer, loggable_name
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import Outage

from .exceptions import ConsumeLater
from .fetch import Fetch
from .requeue import RETRIES_KEY, Requeuer, retry_delay
from .signals import WorkerHooks

logger = logging.getLogger(__name__)

SIGNAL_POLL = 0.2
"""Seconds the main thread waits at a time in :meth:`Worker.run`, so signal handlers run promptly."""


class Router(Protocol):
    """What a worker needs from a router."""

    channels: set[str]

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None: ...


def filter_channels(
    channels: Iterable[str],
    only: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> list[str]:
    """Apply glob filters (``fnmatch``, case-sensitive); return the names sorted."""
    only = list(only or ())
    exclude = list(exclude or ())
    result = []
    for name in channels:
        if only and not any(fnmatch.fnmatchcase(name, pattern) for pattern in only):
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude):
            continue
        result.append(name)
    return sorted(result)


class Worker:
    """Runs consumers for the messages arriving on a router's channels.

    Args:
        channel_layer: the layer to receive from and send to.
        router: has ``channels`` (the names to listen on) and
            ``match(message) -> (consumer, kwargs) | None``.
        hooks: how messages are built and consumers called
            (:class:`~worker.signals.WorkerHooks` by default).
        threads: number of threads receiving and running consumers.
        only_channels / exclude_channels: glob patterns narrowing the
            channels listened on.
        message_retries: how many times a ``ConsumeLater`` message is put
            back before it is dropped.
        signal_handlers: install ``SIGTERM``/``SIGINT`` handlers in
            :meth:`run` (only possible from the main thread).
        prefetch: with N > 0, up to N messages are kept ready besides the
            one in hand: with one thread, that thread takes them with its
            consumers' answers; with several, one more thread receives for
            them all, so a consumer thread never waits for the layer's
            round trip. Faster under load; but a prefetched message waits
            behind a slow consumer even when another worker process is
            idle, so keep 0 when consumers can be slow. A graceful stop
            still runs every prefetched message. Whatever the setting, a
            thread that receives for itself takes its next message in the
            round trip that sends its consumer's answer.
        ordered_channels: channels (of those listened on) whose messages
            must run one at a time, in order: each gets one thread of its
            own, besides ``threads``, that alone receives from it.

    Raises:
        ValueError: ``threads`` is not a positive integer, or the filters
            leave no channel to listen on.
    """

    def __init__(
        self,
        channel_layer: ChannelLayer,
        router: Router,
        hooks: WorkerHooks | None = None,
        threads: int = 1,
        only_channels: Iterable[str] | None = None,
        exclude_channels: Iterable[str] | None = None,
        message_retries: int = 10,
        signal_handlers: bool = True,
        prefetch: int = 0,
        ordered_channels: Iterable[str] = (),
    ) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, not {threads!r}")
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative integer, not {prefetch!r}")
        self.prefetch = prefetch
        self.channel_layer = channel_layer
        self.router = router
        self.hooks = hooks or WorkerHooks()
        self.threads = threads
        self.message_retries = message_retries
        self.signal_handlers = signal_handlers
        self.channels = filter_channels(router.channels, only_channels, exclude_channels)
        if not self.channels:
            raise ValueError(
                f"No channels to listen on: routing has {sorted(router.channels)!r}, "
                f"only={list(only_channels or ())!r}, exclude={list(exclude_channels or ())!r}"
            )
        # A prefix no other process uses: "worker.<random>!".
        self.control_prefix = f"worker.{secrets.token_hex(8)}!"
        # The ordered channels' threads are woken on a prefix of their own: the prefetch receiver takes
        # a batch at a time and could swallow their wake-ups with its own.
        self.ordered_control_prefix = f"worker.{secrets.token_hex(8)}!"
        ordered = set(ordered_channels)
        self.ordered_channels = [name for name in self.channels if name in ordered]
        shared = [name for name in self.channels if name not in ordered]
        # The shared threads stay away from the ordered channels; with nothing else to take, there are none.
        self._listen = [*shared, self.control_prefix] if shared else []
        self._stopping = threading.Event()
        self._signals_seen = 0
        self._requeuer = Requeuer(channel_layer)
        # One per process: its loops and its consumers share the backoff and log an outage once.
        self._outage = Outage(logger, "Talking to the channel layer",
                              meanwhile="retrying with backoff until it answers; a consumer that cannot send "
                                        "loses its message (at most once)")
        self._threads: list[threading.Thread] = []
        self._wake_ups: list[str] = []  # once started, a control prefix per thread blocked in a receive
        self._match = router.match
        self._make_message = self.hooks.make_message
        self._call = self.hooks.call
        self._dispatching = self.hooks.dispatching

    # -- lifecycle ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Start the receiving threads and return (see :meth:`run` to block)."""
        ordered = self.ordered_channels
        logger.info("Listening on channels %s with %d thread(s)%s%s", ", ".join(self.channels), self.threads,
                    f", prefetching {self.prefetch}" if self.prefetch else "",
                    f", and one thread each for {', '.join(ordered)}" if ordered else "")
        self.hooks.ready(self)
        targets: list[tuple[Any, str]]
        # One thread, or no prefetch: each thread receives for itself, its next messages coming with
        # its consumer's answer. Several threads sharing prefetched messages need the receiver thread.
        shared_receiver = bool(self._listen) and self.prefetch > 0 and self.threads > 1
        if not self._listen:
            targets = []
        elif shared_receiver:
            self._ready: queue.SimpleQueue = queue.SimpleQueue()
            # One slot per message held in this process: in a thread's hands or ready. A
            # SimpleQueue of tokens rather than a Semaphore: its get and put are C, where a
            # Semaphore's are Python around a Condition (~15 % of a busy worker's samples).
            self._slots: queue.SimpleQueue = queue.SimpleQueue()
            for _ in range(self.threads + self.prefetch):
                self._slots.put(True)
            targets = [(self._receive_ahead, "worker-receiver")]
            targets += [(self._consume_ready, f"worker-{index}") for index in range(self.threads)]
        else:
            loop = functools.partial(self._loop, self._listen, self.control_prefix, self.prefetch)
            targets = [(loop, f"worker-{index}") for index in range(self.threads)]
        control = self.ordered_control_prefix
        targets += [(functools.partial(self._loop, [name, control], control, 0), f"worker-{name}") for name in ordered]
        # One wake-up per thread blocked in a receive (shared prefetch: the receiver; the consumers wait on it).
        shared = 0 if not self._listen else 1 if shared_receiver else self.threads
        self._wake_ups = [self.control_prefix] * shared + [control] * len(ordered)
        for target, name in targets:
            thread = threading.Thread(target=self._thread, args=(target,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def run(self) -> None:
        """Start, then block until a stop is requested and every thread is done."""
        if self.signal_handlers:
            self.install_signal_handlers()
        self.start()
        # Wait in short slices: the kernel may deliver SIGTERM to any thread,
        # and its Python handler runs only once the main thread wakes up, which
        # a join without a timeout would never do.
        while not self.join(SIGNAL_POLL if self.signal_handlers else None):
            pass

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to finish; return True if they all did."""
        for thread in self._threads:
            thread.join(timeout)
        alive = any(thread.is_alive() for thread in self._threads)
        if not alive:
            self._requeuer.close(flush=True)
        return not alive

    def stop(self) -> None:
        """Ask every thread to finish its current message and leave. Thread-safe."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        # Wake the threads blocked in receive; each takes one wake-up message.
        for prefix in self._wake_ups:
            try:
                self.channel_layer.send(prefix + "wake", {"stop": True})
            except Exception:
                logger.warning("Could not wake a worker thread; it stops after its receive times out")

    def install_signal_handlers(self) -> None:
        """Make ``SIGTERM``/``SIGINT`` stop gracefully (twice: at once)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signo: int, frame: Any) -> None:
        self._signals_seen += 1
        if self._signals_seen > 1:
            logger.warning("Second shutdown signal: exiting now")
            os._exit(1)
        logger.info("Shutdown signal received: finishing the messages in hand")
        # stop() sends on the layer, which may block; keep the handler short.
        threading.Thread(target=self.stop, name="worker-stop", daemon=True).start()

    # -- the loop -------------------------------------------------------------

    def _thread(self, target: Any) -> None:
        try:
            target()
        finally:
            self.hooks.thread_done()

    def _loop(self, listen: list[str], control: str, ahead: int) -> None:
        """Receive and handle until stopped: from the shared channels, or from ``listen`` (one ordered channel).

        The thread holds up to ``ahead + 1`` messages. Each consumer's
        answer carries the next receive in its round trip (a
        :class:`~worker.fetch.Fetch`); only with nothing in hand does the
        thread wait in a blocking receive. A stop runs what it holds first.
        """
        layer = self.channel_layer
        receive_batch = layer.receive_batch
        outage = self._outage
        stopping = self._stopping
        handle = self.handle
        held: collections.deque[tuple[str, dict]] = collections.deque()
        while True:
            if not held:
                if stopping.is_set():
                    return
                try:
                    batch = receive_batch(listen, ahead + 1, block=True)
                except Exception as exc:
                    stopping.wait(outage.failed(exc))  # back off while the layer is down
                    continue
                outage.succeeded()
                held.extend(item for item in batch if not item[0].startswith(control))
                continue
            channel, content = held.popleft()
            if stopping.is_set():
                handle(channel, content)
                continue
            fetch = Fetch(layer, listen, ahead + 1 - len(held))
            handle(channel, content, fetch)
            if fetch.received:
                held.extend(item for item in fetch.received if not item[0].startswith(control))

    def _receive_ahead(self) -> None:
        """Several threads with prefetch: receive while the consumer threads work; hand messages over in order.

        Up to ``threads + prefetch`` messages are held in this process (in a
        thread's hands or ready), one slot each; whatever slots are free are
        filled with one ``receive_batch`` round trip.
        """
        receive_batch = self.channel_layer.receive_batch
        listen = self._listen
        control = self.control_prefix
        slots = self._slots
        ready = self._ready
        take_slot = slots.get_nowait
        give_back = slots.put
        try:
            while True:
                slots.get()
                free = 1
                try:
                    while True:
                        take_slot()
                        free += 1
                except queue.Empty:
                    pass
                while True:
                    if self._stopping.is_set():
                        for _ in range(free):
                            give_back(True)
                        return
                    try:
                        batch = receive_batch(listen, free, block=True)
                    except Exception as exc:
                        self._stopping.wait(self._outage.failed(exc))  # back off while the layer is down
                        continue
                    self._outage.succeeded()
                    batch = [item for item in batch if not item[0].startswith(control)]
                    if batch:
                        break
                for item in batch:
                    ready.put(item)
                for _ in range(free - len(batch)):
                    give_back(True)
        finally:
            for _ in range(self.threads):
                ready.put(None)  # after every prefetched message: nothing is dropped

    def _consume_ready(self) -> None:
        take = self._ready.get
        free_slot = self._slots.put
        handle = self.handle
        while True:
            item = take()
            if item is None:
                return
            try:
                handle(*item)
            finally:
                free_slot(True)

    def handle(self, channel: str, content: dict, fetch: Fetch | None = None) -> None:
        """Route one message and run its consumer, containing every failure.

        ``fetch``, the thread's next receive, is offered (see
        :func:`~worker.fetch.current_fetch`) to whatever sends the
        consumer's answer, to make in the same round trip.
        """
        try:
            message = self._make_message(channel, content, self.channel_layer)
            match = self._match(message)
        except Exception:
            logger.exception("Could not route a message on %s (reply channel %s)", channel,
                             loggable_name(content.get("reply_channel")))
            return
        if match is None:
            logger.warning("No route matches a message on %s (reply channel %s); check your routing",
                           channel, loggable_name(content.get("reply_channel")))
            return
        consumer, kwargs = match
        self._dispatching(channel, message, consumer)
        try:
            if fetch is None:
                self._call(consumer, message, kwargs)
            else:
                fetch.offer()
                try:
                    self._call(consumer, message, kwargs)
                finally:
                    fetch.withdraw()
        except ConsumeLater:
            self.requeue(channel, content)
        except LayerUnavailable as exc:
            # The layer went away under the consumer: one line per outage (not a traceback per
            # message), and no 500 either, which could not be sent. The message is dropped.
            self._outage.failed(exc)
        except Exception as exc:
            logger.exception(
                "Consumer %s raised on channel %s (reply channel %s)",
                _name(consumer), channel, loggable_name(content.get("reply_channel")),
            )
            self.hooks.error(channel, content, exc, self.channel_layer)

    def requeue(self, channel: str, content: dict) -> None:
        """Put a ``ConsumeLater`` message back after a delay, or drop it if retried too often."""
        attempt = content.get(RETRIES_KEY, 0) + 1
        if attempt > self.message_retries:
            logger.warning("Dropping a message on %s (reply channel %s) after %d ConsumeLater retries",
                           channel, loggable_name(content.get("reply_channel")), self.message_retries)
            return
        content[RETRIES_KEY] = attempt
        self._requeuer.schedule(channel, content, retry_delay(attempt))


def _name(thing: Any) -> str:
    """Return a dotted name for a consumer, for logs."""
    module = getattr(thing, "__module__", None) or type(thing).__module__
    name = getattr(thing, "__qualname__", None) or type(thing).__qualname__
    return f"{module}.{name}"
