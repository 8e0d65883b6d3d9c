"""The consume-dispatch loop: take messages off a channel layer, run consumers.

This package imports only :mod:`asgi_backends` (never Django or
:mod:`channels`). A :class:`~worker.worker.Worker` is handed a layer, a
router (anything with ``match(message) -> (consumer, kwargs) | None`` and a
``channels`` set) and :class:`~worker.signals.WorkerHooks`; the Django app
wires its settings, signals and commands in through those hooks.
"""

from .exceptions import ConsumeLater
from .signals import WorkerHooks
from .worker import Worker

__all__ = ["ConsumeLater", "Worker", "WorkerHooks"]
