"""Warnings that come in floods under load, logged as the first one plus a count.

A server at capacity refuses hundreds of requests a second, each for the
same reason; a line for every one makes the log the bottleneck (the
overload scenario of ``benchmarks/faults`` logged 3,000 lines in 4 s, all
from the reactor thread). :class:`RepeatedWarnings` logs the first warning
of a kind, then, at most once per ``interval``, one line saying how many
more there were.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol


class Scheduler(Protocol):
    """What the reactor offers: ``seconds()`` and ``callLater``."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., object], *args: Any) -> Any: ...


class RepeatedWarnings:
    """Logs each kind of warning once per ``interval``, and how many were held back.

    A kind is the message's format string, so ``"http.request channel full;
    answering 503 to %s for %s"`` is one kind whatever the client. Call it
    in the reactor thread.

    Args:
        reactor: its clock and timers (``seconds``, ``callLater``).
        interval: seconds between lines of one kind.
    """

    def __init__(self, reactor: Scheduler, interval: float = 10.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self.reactor = reactor
        self.interval = interval
        self._kinds: dict[str, _Kind] = {}

    def warn(self, logger: logging.Logger, message: str, *args: Any) -> None:
        """Log ``message % args`` at WARNING, unless one of its kind was logged within ``interval``."""
        kind = self._kinds.get(message)
        if kind is None:
            kind = self._kinds[message] = _Kind(logger, message)
        now = self.reactor.seconds()
        if kind.logged_at is None or now - kind.logged_at >= self.interval:
            kind.logged_at = now
            logger.warning(message, *args)
            return
        kind.held += 1
        if kind.timer is None:
            kind.timer = self.reactor.callLater(kind.logged_at + self.interval - now, self._summarise, kind)

    def _summarise(self, kind: _Kind) -> None:
        kind.timer = None
        if kind.held:
            kind.logger.warning("... and %d more like %r in the last %.0f s", kind.held, kind.message, self.interval)
            kind.held = 0
            kind.logged_at = self.reactor.seconds()


class _Kind:
    """One kind of warning: when it was last logged, and how many since."""

    def __init__(self, logger: logging.Logger, message: str) -> None:
        self.logger = logger
        self.message = message
        self.logged_at: float | None = None
        self.held = 0
        self.timer: Any = None
