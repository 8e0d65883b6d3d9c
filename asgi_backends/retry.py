"""One policy for retrying a send that met ``ChannelFull``.

A full channel empties as its reader catches up, so a sender that can wait
retries for a while before giving up: at once is too soon, and the same
pause every time either wastes round trips while the reader is slow or
keeps a fast reader waiting. The policy here is exponential backoff with
jitter under a deadline:

* the first retry comes ``first_delay`` after the refusal, each pause after
  doubles, up to ``max_delay``;
* each pause is shortened by a random share of up to ``jitter``, so
  senders refused together do not come back together;
* the last try is made ``timeout`` seconds after the first refusal (pauses
  are cut short to land on it), and if the channel is still full its
  ``ChannelFull`` is raised.

:func:`send_retrying` applies it to one ``send``; :class:`Backoff` gives the
pauses of one run to callers that retry several sends at once (a batch). A
caller that does not wait in place but reschedules the send (the delay
server, the worker's requeue) counts its tries instead of watching a clock
and takes only the schedule, :meth:`RetryPolicy.delay`.

Every pause is longer than zero and spent in ``sleep`` (or a ``stop``
event's ``wait``): no busy loop.

:class:`Outage` is the same backoff for loops whose layer is unreachable
(Redis restarting): it says when to try again, and logs one line when the
layer goes away and one when it is back, however many tries fall between.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

from .base import ChannelLayer, Message
from .exceptions import LayerUnavailable

Clock = Callable[[], float]
Sleep = Callable[[float], object]
Random = Callable[[], float]
"""Returns a float in ``[0, 1)``, like :func:`random.random`."""

_MAX_DOUBLINGS = 64  # 2**64 times any sane first_delay is past any max_delay; avoids float overflow


class Stop(Protocol):
    """What ``stop`` must offer: :class:`threading.Event` does."""

    def wait(self, timeout: float | None = None) -> bool: ...


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How long, and how often, to retry a send its channel refused as full.

    Attributes:
        timeout: seconds from the first refusal to the last try; 0 tries
            once and gives up.
        first_delay: the pause before the first retry, seconds (above 0).
        max_delay: the longest pause; pauses double from ``first_delay`` up
            to it.
        jitter: the largest share of a pause taken off at random, in
            ``[0, 1)``: a pause lies in ``((1 - jitter) * d, d]`` for the
            nominal pause ``d``. 0 makes the schedule exact.

    Raises:
        TypeError: a field is not a number.
        ValueError: a field is out of range.
    """

    timeout: float = 2.0
    first_delay: float = 0.005
    max_delay: float = 0.1
    jitter: float = 0.5

    def __post_init__(self) -> None:
        for name in ("timeout", "first_delay", "max_delay", "jitter"):
            _seconds(name, getattr(self, name))
        if self.timeout < 0:
            raise ValueError(f"timeout must be 0 or more seconds, not {self.timeout!r}")
        if self.first_delay <= 0:
            raise ValueError(f"first_delay must be above 0 seconds (or retries would spin), not {self.first_delay!r}")
        if self.max_delay < self.first_delay:
            raise ValueError(f"max_delay ({self.max_delay!r}) must be at least first_delay ({self.first_delay!r})")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1) (or a pause could be 0), not {self.jitter!r}")

    def delay(self, attempt: int, random: Random = _random.random) -> float:
        """Return the pause before retry number ``attempt`` (1 is the first retry), jittered.

        Raises:
            ValueError: ``attempt`` is below 1.
        """
        if attempt < 1:
            raise ValueError(f"attempt counts retries from 1, not {attempt!r}")
        nominal = min(self.max_delay, self.first_delay * 2 ** min(attempt - 1, _MAX_DOUBLINGS))
        return nominal * (1.0 - self.jitter * random())

    def backoff(self, clock: Clock = time.monotonic, random: Random = _random.random) -> Backoff:
        """Start the retries of one refusal: a :class:`Backoff` whose deadline is ``timeout`` from now."""
        return Backoff(self, clock, random)


@lru_cache(maxsize=64)
def policy_for(timeout: float) -> RetryPolicy:
    """Return the default :class:`RetryPolicy` with ``timeout``, built (and checked) once per value.

    A policy is immutable, so every send with the same timeout shares one;
    building one per send cost more than the rest of an unrefused send's
    bookkeeping.
    """
    return RetryPolicy(timeout=timeout)


class Backoff:
    """The pauses of one run of retries, under the policy's deadline.

    Make it when a send is first refused (:meth:`RetryPolicy.backoff`); ask
    :meth:`next_pause` after each refusal.

    Attributes:
        deadline: the clock reading at which the last try is made.
        retries: the pauses handed out so far.
    """

    def __init__(self, policy: RetryPolicy, clock: Clock = time.monotonic, random: Random = _random.random) -> None:
        self.policy = policy
        self._clock = clock
        self._random = random
        self.deadline = clock() + policy.timeout
        self.retries = 0
        self._last = False

    def next_pause(self) -> float | None:
        """Return how long to wait before trying again, or None when the deadline has passed.

        A pause never ends past the deadline: the one that would is cut
        short, and the try after it is the last.
        """
        remaining = self.deadline - self._clock()
        if self._last or remaining <= 0:
            return None
        self.retries += 1
        pause = self.policy.delay(self.retries, self._random)
        if pause >= remaining:
            self._last = True  # not left to the clock: a sleep may end a hair early
            return remaining
        return pause


DEFAULT_POLICY = RetryPolicy()
"""2 s of retries, pauses from 5 ms doubling to 100 ms, jittered by up to half."""


def send_retrying(
    layer: ChannelLayer,
    channel: str,
    message: Message,
    policy: RetryPolicy = DEFAULT_POLICY,
    stop: Stop | None = None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    random: Random = _random.random,
) -> None:
    """Send ``message`` on ``channel``, retrying under ``policy`` while the channel is full.

    Args:
        layer: any :class:`~asgi_backends.base.ChannelLayer` (its ``send``
            and ``ChannelFull`` are used).
        policy: when to retry and when to give up.
        stop: an event; once set, the retries end (the pauses are spent in
            its ``wait``, so setting it ends a pause at once).
        clock, sleep, random: the time source, the pause and the jitter
            draw, for tests.

    Raises:
        ChannelFull: the last refusal, when the channel was still full at the
            deadline or ``stop`` was set.
        Exception: anything else ``send`` raises (``MessageTooLarge``,
            ``TypeError``, ``LayerUnavailable``...), at once: only a full
            channel is worth waiting for.
    """
    backoff = None
    while True:
        try:
            layer.send(channel, message)
            return
        except layer.ChannelFull:
            if backoff is None:
                backoff = policy.backoff(clock, random)
            pause = backoff.next_pause()
            if pause is None:
                raise
            if stop is None:
                sleep(pause)  # the channel is full: give its reader time
            elif stop.wait(pause):
                raise


RECONNECT_POLICY = RetryPolicy(timeout=0, first_delay=0.1, max_delay=1.0, jitter=0.5)
"""The pauses between tries of a loop whose layer is down: 0.1 s doubling to 1 s, jittered by up to half.

The cap is what a process adds to an outage: with it, every loop tries
again within a second of the layer answering (the fault harness's Redis
restart measures it), while a try every 0.5-1 s per loop costs a down
Redis nothing (a refused connect).
"""


class Outage:
    """Backoff and log lines for a loop that keeps calling a layer that may be unreachable.

    Call :meth:`failed` when a call raised: it returns the pause before the
    next try (exponential, with jitter, from ``policy``) and logs the first
    failure of an outage only -- a warning for ``LayerUnavailable``, the
    traceback for anything unexpected; later failures of the same outage are
    logged at DEBUG. Call :meth:`succeeded` after a call worked: the first
    success after an outage logs one line saying how long it lasted.
    Shared by several threads of one process (thread-safe), so a process
    logs one pair of lines per outage however many loops it runs.

    Args:
        logger: where the lines go.
        what: what failed, for the lines ("Receiving from the channel layer").
        policy: the pause schedule (only its delays are used).
        clock, random: time source and jitter draw, for tests.
        meanwhile: what happens until the layer answers, for the first
            line ("retrying with backoff until it answers").
    """

    def __init__(self, logger: logging.Logger, what: str, policy: RetryPolicy = RECONNECT_POLICY,
                 clock: Clock = time.monotonic, random: Random = _random.random,
                 meanwhile: str = "retrying with backoff until it answers") -> None:
        self.logger = logger
        self.what = what
        self.meanwhile = meanwhile
        self.policy = policy
        self._clock = clock
        self._random = random
        self._lock = threading.Lock()
        self.failures = 0
        self.started: float | None = None

    def failed(self, exc: BaseException) -> float:
        """Note a failure; return the seconds to wait before trying again."""
        with self._lock:
            self.failures += 1
            first = self.started is None
            if first:
                self.started = self._clock()
            attempt = self.failures
        if first:
            if isinstance(exc, LayerUnavailable):
                self.logger.warning("%s failed: %s; %s", self.what, exc, self.meanwhile)
            else:
                self.logger.error("%s failed; %s", self.what, self.meanwhile, exc_info=exc)
        else:
            self.logger.debug("%s failed again (%d in a row): %s", self.what, attempt, exc)
        return self.policy.delay(attempt, self._random)

    def succeeded(self) -> None:
        """Note a success; ends (and reports) an outage in progress."""
        if self.started is None:  # the common case, without taking the lock
            return
        with self._lock:
            started, failures = self.started, self.failures
            if started is None:
                return
            self.started = None
            self.failures = 0
        self.logger.warning("%s works again after %.1f s (%d failed tries)", self.what, self._clock() - started,
                            failures)
