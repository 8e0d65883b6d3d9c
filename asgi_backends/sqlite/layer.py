"""A channel layer shared by every process on one machine, with no server to run.

Messages, groups and counters live in a SQLite database in a directory the
processes agree on (:mod:`.store`); blocked receivers sleep on Unix datagram
sockets (:mod:`.wakeup`).

A blocking receive, step by step:

1. In one transaction (:func:`.queues.take_or_wait`): take the oldest message
   of the asked-for channels or, if there is none, record a *ticket* (this
   thread's socket and a fresh number) against each of them.
2. Sleep on the socket. A sender that finds the ticket withdraws it in its
   own transaction and, after committing, sends the socket the message
   itself (a hand-off; the message never touches the database) or, for a
   large message it stored, a poke. Both steps are transactions on one
   database, so either the receiver saw the message or the sender saw the
   ticket: a wake-up cannot fall between them.
3. A hand-off is returned as it is; after a poke, go back to 1. A re-check
   every ``recheck_interval`` seconds covers the one wake-up that can be
   lost: a sender killed between its commit and its datagram (a hand-off is
   then lost with it: the message in flight).
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import threading
import time
import weakref
from typing import Any, Callable

from ..base import BaseChannelLayer, Message, non_local_name, unpack
from . import queues as q
from .store import Store
from .wakeup import Datagram, Poker, Waiter, make_datagram, wake_directory

# How long a receiver whose ticket a sender claimed waits for that sender's
# datagram; only a sender stopped or killed right after committing takes longer.
HANDOFF_GRACE = 2.0

_PREFIX = re.compile(r"^[A-Za-z0-9._-]+$")


class _Transport:
    """The database and the sockets one layer instance uses in this process.

    Kept apart from the layer so the exit-time finalizer can close it without
    keeping the layer alive.
    """

    def __init__(self, path: str, expiry: float) -> None:
        self.store = Store(path)
        self.expiry = expiry
        self.wake_directory = wake_directory(self.store.path)
        self.poker = Poker()
        self.waiters: list[Waiter] = []
        self.lock = threading.Lock()
        self.local = threading.local()

    def write(self, operation: Callable[[sqlite3.Connection], Any]) -> Any:
        return self.store.write(operation)

    def waiter(self) -> Waiter:
        """This thread's wake-up socket (a new one in a forked child)."""
        waiter = getattr(self.local, "waiter", None)
        if waiter is None or waiter.pid != os.getpid():
            waiter = self.local.waiter = Waiter(self.wake_directory)
            with self.lock:
                self.waiters.append(waiter)
        return waiter

    def deliver(self, delivery: q.Delivery | None) -> None:
        """Send the datagram a committed transaction promised.

        If the waiter is dead, its message (for a hand-off) goes into the
        database and another waiter is woken. If its socket refuses the
        hand-off (too large for this system, or a full queue), the message
        goes into the database and the same waiter gets a poke instead.
        """
        while delivery is not None:
            if delivery.handed:
                datagram = make_datagram(delivery.ticket, delivery.channel, delivery.data)
            else:
                datagram = make_datagram(delivery.ticket)
            outcome = self.poker.send(delivery.ticket, datagram)
            if outcome:
                return
            failed = delivery
            if outcome is None:
                if failed.handed:
                    self.write(lambda conn: q.insert(conn, failed.queue, failed.channel, failed.data,
                                                     time.time(), self.expiry))
                    self.poker.send(failed.ticket, make_datagram(failed.ticket))
                # A refused poke: the waiter has datagrams queued, so it is
                # awake already (or re-checks within HANDOFF_GRACE).
                return
            delivery = self.write(lambda conn: q.redeliver(conn, failed, time.time(), self.expiry))

    def requeue(self, datagram: Datagram) -> None:
        """Store a hand-off that arrived after its receiver stopped waiting for it."""
        channel, data = datagram.channel, datagram.data
        queue = non_local_name(channel)
        self.deliver(self.write(lambda conn: q.requeue(conn, channel, queue, data, time.time(), self.expiry)))

    def close(self) -> None:
        with self.lock:
            waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if waiter.pid == os.getpid():
                # Hand-offs that came after their receive gave up belong to
                # the channel, not to this process: put them back.
                while (datagram := waiter.read()) is not None:
                    if datagram.channel is not None:
                        self.requeue(datagram)
            waiter.close()
        self.poker.close()
        self.store.close()


class SQLiteChannelLayer(BaseChannelLayer):
    """Cross-process channel layer for one machine, backed by SQLite in ``path``.

    Any number of processes (interface servers, workers, management
    commands) that give the same ``path`` share channels and groups.

    Args:
        path: a directory for the database and wake-up sockets; created if
            missing. It must be on a local file system; a memory-backed one
            (``/dev/shm/myproject-channels`` or ``$XDG_RUNTIME_DIR/...`` on
            Linux) is fastest and steadiest, since writes to a disk-backed
            one pass through its journal.
        prefix: instead of ``path``, as settings written for asgi_ipc give
            it: the directory is then ``asgi-channels-<uid>-<prefix>`` in
            ``/dev/shm`` (or the system temporary directory where there is
            none). ``message_memory`` and
            ``group_memory`` (asgi_ipc's segment sizes) are accepted and
            ignored: the database grows as needed.
        blocking_timeout: longest time ``receive(block=True)`` waits before
            returning ``(None, None)``.
        recheck_interval: how often a blocked receiver re-reads the database
            without being woken -- only a safety net for a sender killed
            between sending and waking it.
        **kwargs: ``expiry``, ``group_expiry``, ``capacity``,
            ``channel_capacity``, ``max_message_size`` as in
            :class:`~asgi_backends.base.BaseChannelLayer`.

    Raises:
        ValueError: a bad setting, or ``path`` is not a usable directory.
    """

    extensions = ["groups", "flush", "statistics", "twisted", "asyncio"]

    def __init__(
        self,
        path: str | None = None,
        blocking_timeout: float = 5.0,
        recheck_interval: float = 0.5,
        *,
        prefix: str | None = None,
        message_memory: int | None = None,
        group_memory: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is None:
            path = self._path_for_prefix(prefix)
        if not isinstance(blocking_timeout, (int, float)) or blocking_timeout < 0:
            raise ValueError(f"blocking_timeout must be a non-negative number of seconds, not {blocking_timeout!r}")
        if not isinstance(recheck_interval, (int, float)) or recheck_interval <= 0:
            raise ValueError(f"recheck_interval must be a positive number of seconds, not {recheck_interval!r}")
        self.blocking_timeout = blocking_timeout
        self.recheck_interval = recheck_interval
        self._transport = _Transport(path, self.expiry)
        self._store = self._transport.store
        self.path = self._store.path
        self._finalizer = weakref.finalize(self, self._transport.close)

    @staticmethod
    def _path_for_prefix(prefix: str | None) -> str:
        if prefix is None:
            raise ValueError(
                "SQLiteChannelLayer needs a directory: set CONFIG = {'path': '/some/dir'}, the same in every "
                "process that should share channels"
            )
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise ValueError(f"prefix must be ASCII letters, digits, '.', '-' or '_', not {prefix!r}")
        # asgi_ipc kept its segments in /dev/shm; memory is also where this
        # layer is fastest (no file-system journal behind the writes).
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        return os.path.join(base, f"asgi-channels-{os.getuid()}-{prefix}")

    # -- sending ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``, or hand it straight to a receiver blocked on it.

        Raises:
            TypeError: bad channel name or message.
            ChannelFull: the channel holds ``capacity`` unread messages.
            MessageTooLarge: the encoded message is over the size limit.
        """
        self.valid_channel_name(channel)
        data = self.encode(message)
        queue = non_local_name(channel)
        capacity = self.get_capacity(channel)
        expiry = self.expiry
        accepted, delivery = self._store.write(
            lambda conn: q.put(conn, queue, channel, data, capacity, time.time(), expiry)
        )
        if delivery is not None:
            self._transport.deliver(delivery)
        if not accepted:
            raise self.channel_full(channel)

    # -- receiving ----------------------------------------------------------

    def receive(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]:
        """Take the oldest message from any of ``channels``.

        With ``block=True``, sleeps (using no CPU) until a message arrives or
        ``blocking_timeout`` passes.

        Returns:
            ``(channel, message)`` -- the full channel name for a
            process-specific channel -- or ``(None, None)``.

        Raises:
            TypeError: ``channels`` is not a list of valid receive names.
        """
        queues = list(dict.fromkeys(self.valid_channel_names(channels, receive=True)))
        if not queues:
            return None, None
        if block and self.blocking_timeout > 0:
            found = self._receive_blocking(queues)
        else:
            found = self._store.write(lambda conn: q.take_or_wait(conn, queues, time.time(), None, None))[1]
        if found is None:
            return None, None
        return found[0], unpack(found[1])

    def _receive_blocking(self, queues: list[str]) -> tuple[str, bytes] | None:
        waiter = self._transport.waiter()
        deadline = time.monotonic() + self.blocking_timeout
        ticket: str | None = None  # our ticket while it is recorded in the database
        number = 0  # the number of the ticket whose answer we expect
        try:
            while True:
                remaining = deadline - time.monotonic()
                fresh_number, fresh = 0, None  # out of time: take what is there and stop
                if remaining > 0:
                    fresh_number, fresh = waiter.new_ticket() if ticket is None else (number, ticket)
                held = ticket
                state, found = self._store.write(lambda conn: q.take_or_wait(conn, queues, time.time(), held, fresh))
                if state is q.Wait.DONE:
                    ticket = None
                    return found
                if state is q.Wait.WAITING:
                    if ticket is None:
                        ticket, number = fresh, fresh_number
                    datagram = self._sleep(waiter, number, ticket, deadline)
                else:  # CLAIMED: the sender's datagram is on its way
                    ticket = None
                    datagram = self._await(waiter, number, HANDOFF_GRACE)
                if datagram is not None:
                    ticket = None  # answered, so its sender withdrew it
                    if datagram.channel is not None:
                        return datagram.channel, datagram.data
        finally:
            if ticket is not None:  # left by an exception (KeyboardInterrupt in select, say)
                left = ticket
                self._store.write(lambda conn: q.withdraw(conn, left))

    def _sleep(self, waiter: Waiter, number: int, ticket: str, deadline: float) -> Datagram | None:
        """Wait for the answer to ``ticket`` until ``deadline``, re-checking every ``recheck_interval``.

        The re-check is a read: while the ticket is still recorded no sender
        has taken it, so nothing can be waiting for us. Returns the datagram,
        or None when the deadline passed or the ticket vanished unanswered.
        """
        while True:
            remaining = deadline - time.monotonic()
            datagram = self._await(waiter, number, min(remaining, self.recheck_interval))
            if datagram is not None or remaining <= self.recheck_interval:
                return datagram
            if not self._store.read(lambda conn: q.registered(conn, ticket)):
                return None

    def _await(self, waiter: Waiter, number: int, timeout: float) -> Datagram | None:
        """Return the datagram answering ticket ``number`` within ``timeout``; put late hand-offs back."""
        end = time.monotonic() + timeout
        while True:
            datagram = waiter.wait(end - time.monotonic())
            if datagram is None or datagram.number == number:
                return datagram
            if datagram.channel is not None:
                self._transport.requeue(datagram)

    # -- groups -------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, renewing its membership for ``group_expiry``."""
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        expires = time.time() + self.group_expiry
        self._store.write(
            lambda conn: conn.execute(
                "INSERT INTO groups (grp, channel, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (grp, channel) DO UPDATE SET expires = excluded.expires",
                (group, channel, expires),
            )
        )

    def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        self._store.write(
            lambda conn: conn.execute("DELETE FROM groups WHERE grp = ? AND channel = ?", (group, channel))
        )

    def group_channels(self, group: str) -> list[str]:
        """Return the channels currently in ``group``."""
        self.valid_group_name(group)
        return self._store.write(lambda conn: self._members(conn, group))

    def _members(self, conn: sqlite3.Connection, group: str) -> list[str]:
        now = time.time()
        q.purge(conn, now)
        conn.execute("DELETE FROM groups WHERE expires <= ?", (now,))
        return [row[0] for row in conn.execute("SELECT channel FROM groups WHERE grp = ?", (group,))]

    def send_group(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``.

        A member at capacity misses this message; ``ChannelFull`` is never raised.
        """
        self.valid_group_name(group)
        data = self.encode(message)

        def put_all(conn: sqlite3.Connection) -> list[q.Delivery]:
            deliveries = []
            now = time.time()
            for channel in self._members(conn, group):
                capacity = self.get_capacity(channel)
                _, delivery = q.put(conn, non_local_name(channel), channel, data, capacity, now, self.expiry, True)
                if delivery is not None:
                    deliveries.append(delivery)
            return deliveries

        for delivery in self._store.write(put_all):
            self._transport.deliver(delivery)

    # -- flush, statistics, lifecycle -----------------------------------------

    def flush(self) -> None:
        """Delete every message and group of this layer (all processes); keep global counters."""

        def flush(conn: sqlite3.Connection) -> None:
            sent, full = conn.execute("SELECT coalesce(sum(sent), 0), coalesce(sum(full), 0) FROM stats").fetchone()
            conn.execute("DELETE FROM messages")
            conn.execute("DELETE FROM groups")
            conn.execute("DELETE FROM stats")
            conn.execute("INSERT INTO stats (queue, sent, full) VALUES ('', ?, ?)", (sent, full))

        self._store.write(flush)

    def global_statistics(self) -> dict[str, int]:
        """Return ``messages_count`` and ``channel_full_count`` over all processes since the directory was created."""
        sent, full = self._store.read(
            lambda conn: conn.execute("SELECT coalesce(sum(sent), 0), coalesce(sum(full), 0) FROM stats").fetchone()
        )
        return {"messages_count": sent, "channel_full_count": full}

    def channel_statistics(self, channel: str) -> dict[str, float]:
        """Return counts for ``channel``: sent, pending, full, and oldest pending age (s)."""
        self.valid_channel_name(channel)
        queue = non_local_name(channel)

        def read(conn: sqlite3.Connection) -> tuple[Any, ...]:
            now = time.time()
            counts = conn.execute("SELECT sent, full FROM stats WHERE queue = ?", (queue,)).fetchone() or (0, 0)
            pending, oldest = conn.execute(
                "SELECT count(*), min(created) FROM messages WHERE queue = ? AND expires > ?", (queue, now)
            ).fetchone()
            return counts + (pending, (now - oldest) if oldest is not None else 0.0)

        sent, full, pending, max_age = self._store.read(read)
        return {
            "messages_count": sent,
            "messages_pending": pending,
            "messages_max_age": max_age,
            "channel_full_count": full,
        }

    def close(self) -> None:
        """Release this process's sockets and connections; the shared data stays. Also done at exit."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} path={self.path!r}>"
