"""Django signals fired around consumers.

* ``consumer_started(sender, message)`` -- before a consumer runs.
* ``consumer_finished(sender, message)`` -- after it returned or raised.
* ``worker_ready(sender)`` -- when a worker is about to receive messages.

Database connections are checked around every consumer as around a view
(see :class:`channels.worker.ChannelsHooks`).
"""

from __future__ import annotations

from django.dispatch import Signal

consumer_started = Signal()
consumer_finished = Signal()
worker_ready = Signal()
worker_process_ready = Signal()

__all__ = ["consumer_finished", "consumer_started", "worker_process_ready", "worker_ready"]
