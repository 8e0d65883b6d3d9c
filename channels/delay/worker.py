"""The delay server: store ``asgi.delay`` messages, send each when it falls due.

Two threads, neither of which polls:

* the *receiver* blocks on ``channel_layer.receive(["asgi.delay"])``,
  validates each request, stores it as a :class:`DelayedMessage` row and
  wakes the sender;
* the *sender* sends every due row, then sleeps on a condition variable
  until the next due time or until the receiver wakes it.

Sending a row deletes it in the same database transaction, so a message is
sent by one delay server only, and a crash before the transaction commits
leaves the row for the next run (a crash in the instant between the send and
the commit can send it twice; nothing is ever lost). A target channel that is
full is retried ``full_retries`` times, the row rescheduled each time after
the next pause of :data:`FULL_RETRY` (50 ms doubling to 5 s, jittered), then
the message is dropped with an error in the log. Bad requests are logged
and dropped.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import signal
import threading
from typing import Any

from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from asgi_backends.base import ChannelLayer
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.retry import Outage, RetryPolicy

from .models import DelayedMessage, InvalidDelayedMessage

logger = logging.getLogger(__name__)

DELAY_CHANNEL = "asgi.delay"

FULL_RETRY = RetryPolicy(first_delay=0.05, max_delay=5.0)
"""The pauses between tries of a due message whose channel is full.

Rows are rescheduled, not waited for, so only the schedule is used; the
number of tries is ``DelayWorker.full_retries``.
"""


class DelayWorker:
    """Runs the delay server against one channel layer.

    Args:
        channel_layer: a cross-process layer.
        signal_handlers: make ``SIGTERM``/``SIGINT`` stop :meth:`run`.
        full_retries: how often a send that meets ``ChannelFull`` is retried
            (after the pauses of :data:`FULL_RETRY`).
        recheck_interval: longest sleep between looks at the table, for rows
            another delay server process stored (seconds).
    """

    batch_size = 100

    def __init__(self, channel_layer: ChannelLayer, signal_handlers: bool = True, full_retries: int = 10,
                 recheck_interval: float = 30.0) -> None:
        self.channel_layer = channel_layer
        self.signal_handlers = signal_handlers
        self.full_retries = full_retries
        self.recheck_interval = recheck_interval
        self.control_prefix = f"delay.{secrets.token_hex(8)}!"
        self._stopping = threading.Event()
        self._wake = threading.Condition()
        self._dirty = True
        self._receiver: threading.Thread | None = None
        # Each logs one line when its resource goes away and one when it is back.
        self._layer_outage = Outage(logger, "Receiving delayed messages from the channel layer")
        self._send_outage = Outage(logger, "Sending delayed messages to the channel layer")
        self._db_outage = Outage(logger, "Reading the delayed message table")

    # -- lifecycle ----------------------------------------------------------------

    def run(self) -> None:
        """Receive and send until :meth:`stop` (or a signal); returns when both threads are done."""
        if self.signal_handlers:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        logger.info("Listening on %s", DELAY_CHANNEL)
        self._receiver = threading.Thread(target=self._receive_loop, name="delay-receiver", daemon=True)
        self._receiver.start()
        try:
            self._send_loop()
        finally:
            self.stop()
            self._receiver.join()
            close_old_connections()
        logger.info("Delay server stopped")

    def stop(self) -> None:
        """Ask both threads to finish what they hold and leave. Thread-safe."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        try:
            self.channel_layer.send(self.control_prefix + "stop", {"stop": True})
        except Exception:
            logger.warning("Could not wake the delay receiver; it stops after its receive times out")

    def _on_signal(self, signo: int, frame: Any) -> None:
        logger.info("Shutdown signal received: stopping the delay server")
        threading.Thread(target=self.stop, name="delay-stop", daemon=True).start()

    # -- receiving ----------------------------------------------------------------

    def _receive_loop(self) -> None:
        listen = [DELAY_CHANNEL, self.control_prefix]
        while not self._stopping.is_set():
            try:
                channel, content = self.channel_layer.receive(listen, block=True)
            except Exception as exc:
                self._stopping.wait(self._layer_outage.failed(exc))  # back off while the layer is down
                continue
            self._layer_outage.succeeded()
            if channel is None or channel.startswith(self.control_prefix):
                continue
            self.store(content)

    def store(self, request: Any) -> DelayedMessage | None:
        """Validate and save one ``asgi.delay`` request, wake the sender; return the row (None if dropped)."""
        try:
            row = DelayedMessage.from_request(request, self.channel_layer)
        except InvalidDelayedMessage as exc:
            logger.error("Dropping a bad asgi.delay message: %s", exc)
            return None
        try:
            row.save()
        except DatabaseError:
            logger.exception("Could not store a delayed message for %s; it is lost", row.channel_name)
            close_old_connections()
            return None
        logger.debug("Stored a message for %s due %s", row.channel_name, row.due_date)
        self.wake()
        return row

    def wake(self) -> None:
        """Make the sender look at the table again now."""
        with self._wake:
            self._dirty = True
            self._wake.notify_all()

    # -- sending ------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                self._dirty = False
            try:
                self.send_due()
                next_due = DelayedMessage.objects.next_due_date()
            except DatabaseError as exc:
                close_old_connections()
                self._stopping.wait(self._db_outage.failed(exc))  # back off while the database is away
                continue
            self._db_outage.succeeded()
            timeout = self.recheck_interval
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - timezone.now()).total_seconds()))
            with self._wake:
                if not self._dirty and not self._stopping.is_set() and timeout > 0:
                    self._wake.wait(timeout)

    def send_due(self) -> int:
        """Send every message due now; return how many were sent."""
        sent = 0
        while not self._stopping.is_set():
            rows = list(DelayedMessage.objects.due()[: self.batch_size])
            for row in rows:
                sent += self.send_one(row)
            if len(rows) < self.batch_size:
                return sent
        return sent

    def send_one(self, row: DelayedMessage) -> int:
        """Send one due row and delete it in one transaction; return 1 if this call sent it."""
        full = self.channel_layer.ChannelFull
        lost_reply: LayerUnavailable | None = None
        try:
            with transaction.atomic():
                deleted, _ = DelayedMessage.objects.filter(pk=row.pk).delete()
                if not deleted:
                    return 0  # another delay server sent it
                try:
                    self.channel_layer.send(row.channel_name, row.message())
                except LayerUnavailable as exc:
                    if not exc.may_have_run:
                        raise
                    # The layer may have queued it before the connection broke: sending it
                    # again could deliver it twice, so the row goes (at most once).
                    lost_reply = exc
        except full:
            self._retry_full(row)
            return 0
        except DatabaseError:
            raise
        except Exception as exc:
            # The transaction rolled back: the row stays and is tried again.
            self._stopping.wait(self._send_outage.failed(exc))
            return 0
        if lost_reply is not None:
            logger.warning("A delayed message for %s may not have been delivered (%s); not sending it again",
                           row.channel_name, lost_reply)
            self._stopping.wait(self._send_outage.failed(lost_reply))
            return 1
        self._send_outage.succeeded()
        logger.debug("Sent a delayed message to %s", row.channel_name)
        return 1

    def _retry_full(self, row: DelayedMessage) -> None:
        if row.attempts >= self.full_retries:
            logger.error("Dropping a delayed message for %s: the channel stayed full after %d retries",
                         row.channel_name, row.attempts)
            DelayedMessage.objects.filter(pk=row.pk).delete()
            return
        backoff = FULL_RETRY.delay(row.attempts + 1)
        DelayedMessage.objects.filter(pk=row.pk).update(
            attempts=row.attempts + 1, due_date=timezone.now() + datetime.timedelta(seconds=backoff))
        logger.warning("Channel %s is full; retrying its delayed message in %.2fs", row.channel_name, backoff)
