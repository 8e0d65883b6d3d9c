"""Waiting on a condition with a deadline: the suite's one polling helper."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition",
               interval: float = 0.01) -> Any:
    """Call ``condition()`` until it returns something truthy and return that.

    For what offers nothing to block on (a port opening, a log line, another
    process's progress). Raises ``AssertionError`` naming ``what`` after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)
