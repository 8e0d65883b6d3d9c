"""Exceptions a consumer raises to steer the worker.

:class:`ConsumeLater` lives here rather than in :mod:`channels` so that the
worker can recognise it without importing Django;
``channels.exceptions.ConsumeLater`` is the same class.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of the exceptions this package defines."""


class ConsumeLater(WorkerError):
    """Raised by a consumer that cannot handle the message yet.

    The worker puts the message back on its channel after a short, growing
    delay and gives up (logging a warning) after ``message_retries`` attempts.
    Sends the consumer made before raising are discarded.
    """
