"""One timer per connection, on the reactor's clock, that a connection moves as its state changes.

A connection has one timeout at a time (its head's deadline, its body's
idle timeout, the wait for a response, keep-alive). Setting a deadline on
every request or every read must cost nothing measurable, so
:class:`Deadline` keeps one ``callLater`` and moves it only when the new
deadline is *sooner*; a later one is noted, and the timer, when it fires
early, sets itself again for it. Tests drive it with a ``task.Clock``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from .context import Reactor

__all__ = ["Deadline"]


class Deadline:
    """A moment after which ``expired`` is called (once), unless it is moved or cleared first.

    Args:
        clock: the reactor (``seconds`` and ``callLater``).
        expired: called, with no arguments, when the current deadline has
            passed.
    """

    __slots__ = ("clock", "expired", "when", "_timer", "_timer_at")

    def __init__(self, clock: Reactor, expired: Callable[[], object]) -> None:
        self.clock = clock
        self.expired = expired
        self.when: float | None = None
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0

    def set(self, when: float) -> None:
        """Make ``when`` (on the clock) the moment to expire."""
        self.when = when
        if self._timer is None or when < self._timer_at:
            self._arm(when)

    def clear(self) -> None:
        """No deadline for now (the timer, if set, finds none and does nothing)."""
        self.when = None

    def cancel(self) -> None:
        """No deadline any more, and no timer (the connection is gone)."""
        self.when = None
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None and timer.active():
            timer.cancel()
        self._timer_at = when
        self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        when = self.when
        if when is None:
            return
        if when > self._timer_at:
            self._arm(when)  # moved later since the timer was set: wait on
            return
        self.when = None
        self.expired()
