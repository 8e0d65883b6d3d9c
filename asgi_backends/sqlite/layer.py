"""A channel layer shared by every process on one machine, with no server to run.

Messages, groups and counters live in a SQLite database in a directory the
processes agree on; blocked receivers sleep on Unix datagram sockets that
senders poke (:mod:`.wakeup`). See :mod:`.store` for the table layout and why
a killed process cannot corrupt or wedge it.

A blocking receive, step by step:

1. In one transaction: take the oldest message of the asked-for channels, or,
   if there is none, record this thread's wake-up socket against each of them.
2. Sleep on the socket. A sender that commits a message to one of those
   channels removes one waiter's records in its own transaction and pokes
   that waiter after committing; since both steps are transactions on the
   same database, either the receiver saw the message or the sender saw the
   receiver -- a wake-up cannot fall between them.
3. On waking, go back to 1. A re-check every ``recheck_interval`` seconds
   covers the one wake-up that can be lost: a sender killed between its
   commit and its poke.
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
import weakref
from typing import Any

from ..base import BaseChannelLayer, Message, non_local_name, unpack
from .store import Store
from .wakeup import Poker, Waiter, wake_directory

_STATS_SENT = "INSERT INTO stats (queue, sent) VALUES (?, 1) ON CONFLICT (queue) DO UPDATE SET sent = sent + 1"
_STATS_FULL = "INSERT INTO stats (queue, full) VALUES (?, 1) ON CONFLICT (queue) DO UPDATE SET full = full + 1"
_INSERT = "INSERT INTO messages (queue, channel, created, expires, data) VALUES (?, ?, ?, ?, ?)"
_COUNT = "SELECT count(*) FROM messages WHERE queue = ?"
_TAKE_ONE = (
    "DELETE FROM messages WHERE id = (SELECT min(id) FROM messages WHERE queue = ?) RETURNING channel, data"
)


@functools.lru_cache(maxsize=64)
def _take_sql(count: int) -> str:
    # The first message of the first non-empty queue, in the order the
    # queues are given (the caller shuffles them so no channel starves);
    # each queue's head is one index seek.
    heads = " UNION ALL ".join(
        f"SELECT {position} AS position, (SELECT min(id) FROM messages WHERE queue = ?) AS id" for position in range(count)
    )
    return (
        f"DELETE FROM messages WHERE id = (SELECT id FROM ({heads}) WHERE id IS NOT NULL ORDER BY position LIMIT 1) "
        "RETURNING channel, data"
    )


class _Resources:
    """What a layer holds open in this process; closed by :meth:`SQLiteChannelLayer.close` or at exit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.poker = Poker()
        self.waiters: list[Waiter] = []
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.close()
        self.poker.close()
        self.store.close()


class SQLiteChannelLayer(BaseChannelLayer):
    """Cross-process channel layer for one machine, backed by SQLite in ``path``.

    Any number of processes (interface servers, workers, management
    commands) that give the same ``path`` share channels and groups.

    Args:
        path: a directory for the database and wake-up sockets; created if
            missing. Use a local file system (``/tmp/myproject-channels``,
            or ``/dev/shm/...`` to keep it in memory).
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
    cross_process = True

    def __init__(self, path: str, blocking_timeout: float = 5.0, recheck_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(blocking_timeout, (int, float)) or blocking_timeout < 0:
            raise ValueError(f"blocking_timeout must be a non-negative number of seconds, not {blocking_timeout!r}")
        if not isinstance(recheck_interval, (int, float)) or recheck_interval <= 0:
            raise ValueError(f"recheck_interval must be a positive number of seconds, not {recheck_interval!r}")
        self.blocking_timeout = blocking_timeout
        self.recheck_interval = recheck_interval
        store = Store(path)
        self.path = store.path
        self._store = store
        self._wake_directory = wake_directory(store.path)
        self._resources = _Resources(store)
        self._thread = threading.local()
        self._finalizer = weakref.finalize(self, self._resources.close)

    # -- sending ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel`` and wake one receiver blocked on it.

        Raises:
            TypeError: bad channel name or message.
            ChannelFull: the channel holds ``capacity`` unread messages.
            MessageTooLarge: the encoded message is over the size limit.
        """
        self.valid_channel_name(channel)
        data = self.encode(message)
        queue = non_local_name(channel)
        capacity = self.get_capacity(channel)
        accepted, waiter = self._store.write(lambda conn: self._put(conn, queue, channel, data, capacity))
        if waiter is not None:
            self._wake(queue, waiter)
        if not accepted:
            raise self.ChannelFull(f"Channel {channel!r} is at capacity ({capacity})")

    def _put(self, conn: sqlite3.Connection, queue: str, channel: str, data: bytes, capacity: int) -> tuple[bool, str | None]:
        """Insert one message unless its queue is full; claim a waiter to wake. In a transaction."""
        now = time.time()
        self._purge(conn, now)
        if conn.execute(_COUNT, (queue,)).fetchone()[0] >= capacity:
            conn.execute(_STATS_FULL, (queue,))
            return False, None
        conn.execute(_INSERT, (queue, channel, now, now + self.expiry, data))
        conn.execute(_STATS_SENT, (queue,))
        return True, self._claim_waiter(conn, queue)

    @staticmethod
    def _claim_waiter(conn: sqlite3.Connection, queue: str) -> str | None:
        """Pick one receiver waiting on ``queue`` and withdraw all its records, so the next send wakes another."""
        row = conn.execute("SELECT address FROM waiters WHERE queue = ? LIMIT 1", (queue,)).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM waiters WHERE address = ?", row)
        return row[0]

    def _wake(self, queue: str, address: str | None) -> None:
        """Poke ``address``; while it turns out dead, forget it and wake the next waiter of ``queue``."""
        poker = self._resources.poker
        while address is not None and not poker.poke(address):

            def forget_and_claim(conn: sqlite3.Connection, dead: str = address) -> str | None:
                conn.execute("DELETE FROM waiters WHERE address = ?", (dead,))
                return self._claim_waiter(conn, queue)

            address = self._store.write(forget_and_claim)

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        """Delete expired messages; their channels leave every group (they stopped reading)."""
        expired = conn.execute("DELETE FROM messages WHERE expires <= ? RETURNING channel", (now,)).fetchall()
        if expired:
            conn.executemany("DELETE FROM groups WHERE channel = ?", set(expired))

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
        if not block or self.blocking_timeout == 0:
            found = self._store.write(lambda conn: self._take(conn, queues, None, False, False))
        else:
            found = self._receive_blocking(queues)
        if found is None:
            return None, None
        return found[0], unpack(found[1])

    def _receive_blocking(self, queues: list[str]) -> tuple[str, bytes] | None:
        waiter = self._waiter()
        address = waiter.address
        waiter.drain()  # pokes left from earlier calls would only cost a spurious loop
        deadline = time.monotonic() + self.blocking_timeout
        registered = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                wait = remaining > 0
                was = registered
                found = self._store.write(lambda conn: self._take(conn, queues, address, was, wait))
                registered = found is None and wait
                if not registered:
                    return found
                waiter.wait(min(remaining, self.recheck_interval))
        finally:
            if registered:  # left by an exception (KeyboardInterrupt in select, say)
                self._store.write(lambda conn: conn.execute("DELETE FROM waiters WHERE address = ?", (address,)))

    def _take(
        self, conn: sqlite3.Connection, queues: list[str], address: str | None, registered: bool, wait: bool
    ) -> tuple[str, bytes] | None:
        """Pop the oldest message of ``queues``; else, if ``wait``, register ``address`` as waiting. In a transaction."""
        self._purge(conn, time.time())
        if len(queues) == 1:
            row = conn.execute(_TAKE_ONE, queues).fetchone()
        else:
            row = conn.execute(_take_sql(len(queues)), random.sample(queues, len(queues))).fetchone()
        if row is not None or not wait:
            if registered:
                conn.execute("DELETE FROM waiters WHERE address = ?", (address,))
            return row
        conn.executemany("INSERT OR IGNORE INTO waiters (queue, address) VALUES (?, ?)", [(q, address) for q in queues])
        return None

    def _waiter(self) -> Waiter:
        """This thread's wake-up socket (a new one in a forked child)."""
        waiter = getattr(self._thread, "waiter", None)
        if waiter is None or waiter.pid != os.getpid():
            waiter = self._thread.waiter = Waiter(self._wake_directory)
            with self._resources.lock:
                self._resources.waiters.append(waiter)
        return waiter

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
        self._store.write(lambda conn: conn.execute("DELETE FROM groups WHERE grp = ? AND channel = ?", (group, channel)))

    def group_channels(self, group: str) -> list[str]:
        """Return the channels currently in ``group``."""
        self.valid_group_name(group)
        return self._store.write(lambda conn: self._members(conn, group))

    def _members(self, conn: sqlite3.Connection, group: str) -> list[str]:
        now = time.time()
        self._purge(conn, now)
        conn.execute("DELETE FROM groups WHERE expires <= ?", (now,))
        return [row[0] for row in conn.execute("SELECT channel FROM groups WHERE grp = ?", (group,))]

    def send_group(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``.

        A member at capacity misses this message; ``ChannelFull`` is never raised.
        """
        self.valid_group_name(group)
        data = self.encode(message)

        def put_all(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            wake = []
            for channel in self._members(conn, group):
                queue = non_local_name(channel)
                accepted, waiter = self._put(conn, queue, channel, data, self.get_capacity(channel))
                if waiter is not None:
                    wake.append((queue, waiter))
            return wake

        for queue, waiter in self._store.write(put_all):
            self._wake(queue, waiter)

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
