"""The SQLite database behind the same-machine layer: schema, connections, transactions.

Layout of ``<path>/channels.sqlite3`` (WAL mode)::

    messages(id, queue, channel, created, expires, data)
        one row per unread message. ``queue`` is what receivers ask for: the
        channel name, or its ``prefix!`` for a process-specific channel;
        ``channel`` is the full name. FIFO per queue is ``ORDER BY id`` (a
        new rowid is always above every existing one).
    groups(grp, channel, expires)      one row per membership.
    waiters(queue, since, ticket)      blocked receivers: the ticket (wake-up
                                       socket and number, see :mod:`.wakeup`)
                                       of a thread waiting on ``queue`` since
                                       ``since``; the longest waiting is woken
                                       first, so receivers share the work.
    stats(queue, sent, full)           counters for the statistics extension;
                                       the row with queue '' keeps the global
                                       totals of flushed channels.

Every change is one SQLite transaction, so a process killed at any point
leaves either all of an operation or none of it. Writers are serialised by an
``flock`` on ``<path>/channels.lock`` taken before ``BEGIN IMMEDIATE``: the
kernel wakes the next writer the moment the lock is free (SQLite's own busy
handler sleeps in growing steps instead) and releases the lock of a process
that dies. Durability against power loss is not a goal -- messages live for
seconds -- so ``synchronous=OFF``: a killed *process* loses nothing that was
committed, since committed pages are already in the kernel's page cache.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import stat
import threading
from typing import Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_NAME = "channels.sqlite3"
LOCK_NAME = "channels.lock"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    channel TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires);
CREATE TABLE IF NOT EXISTS groups (
    grp TEXT NOT NULL,
    channel TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (grp, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS groups_by_channel ON groups (channel);
CREATE INDEX IF NOT EXISTS groups_by_expiry ON groups (expires);
CREATE TABLE IF NOT EXISTS waiters (
    queue TEXT NOT NULL,
    since REAL NOT NULL,
    ticket TEXT NOT NULL,
    PRIMARY KEY (queue, since, ticket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS waiters_by_ticket ON waiters (ticket);
CREATE TABLE IF NOT EXISTS stats (
    queue TEXT PRIMARY KEY,
    sent INTEGER NOT NULL DEFAULT 0,
    full INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


class _ThreadState(threading.local):
    pid = -1
    conn: sqlite3.Connection
    lock_fd = -1


def check_private(path: str, what: str) -> None:
    """Refuse a layer directory or database that another user could have planted or can write.

    Whoever can write the layer's files can read every message, reply
    channel names (capabilities) included, and inject messages; the
    default paths are predictable names in ``/dev/shm`` or ``/tmp``, where
    anyone may create them first.

    Raises:
        ValueError: ``path`` (or a symbolic link on the way to it) is owned
            by another user, or is writable by its group or by others.
    """
    uid = os.getuid()
    link = os.lstat(path)
    info = os.stat(path)
    if link.st_uid != uid or info.st_uid != uid:
        raise ValueError(
            f"The layer's {what} {path!r} belongs to another user (uid {info.st_uid if info.st_uid != uid else link.st_uid},"
            f" not {uid}): someone else may have created it first. Remove it, or give the layer a path of its own"
        )
    if info.st_mode & 0o022:
        raise ValueError(
            f"The layer's {what} {path!r} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"make it private (chmod go-w {path}) or give the layer a path of its own"
        )


class Store:
    """Per-thread SQLite connections to one layer directory, and its write transactions.

    Args:
        path: the layer's directory; created (mode 0700: reply channel names
            are capabilities) if missing.

    Raises:
        ValueError: ``path`` exists and is not a directory, or it (or the
            database in it) belongs to another user or is writable by others.
    """

    pragmas = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF")

    def __init__(self, path: str) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValueError(f"path must be a directory path, not {path!r}")
        path = os.path.abspath(os.fspath(path))
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"path {path!r} exists and is not a directory; give the layer a directory of its own")
        os.makedirs(path, mode=0o700, exist_ok=True)
        self.path = path
        self.database = os.path.join(path, DATABASE_NAME)
        check_private(path, "directory")
        if os.path.exists(self.database):
            check_private(self.database, "database")
        self._lock_path = os.path.join(path, LOCK_NAME)
        self._local = _ThreadState()
        self._all: list[tuple[sqlite3.Connection, int]] = []
        self._all_lock = threading.Lock()
        self.write(self._create_schema)

    # -- connections ------------------------------------------------------

    def _state(self) -> _ThreadState:
        state = self._local
        if state.pid != os.getpid():
            # First use in this thread, or we are a forked child: SQLite
            # connections and lock descriptors must not cross a fork.
            state.conn = sqlite3.connect(self.database, isolation_level=None, timeout=30, check_same_thread=False)
            state.lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            # Switching to WAL needs the database to itself and SQLite answers
            # "database is locked" at once (no busy wait) while another
            # process is creating it; the writers' lock keeps them apart.
            fcntl.flock(state.lock_fd, fcntl.LOCK_EX)
            try:
                for pragma in self.pragmas:
                    state.conn.execute(pragma)
            finally:
                fcntl.flock(state.lock_fd, fcntl.LOCK_UN)
            state.pid = os.getpid()
            with self._all_lock:
                self._all.append((state.conn, state.lock_fd))
        return state

    def write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation(conn)`` in one write transaction and return its result.

        The transaction commits if ``operation`` returns and rolls back if it
        raises; either way the lock is released.
        """
        state = self._state()
        conn = state.conn
        fcntl.flock(state.lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = operation(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        finally:
            fcntl.flock(state.lock_fd, fcntl.LOCK_UN)

    def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation(conn)`` in a read transaction (a consistent snapshot)."""
        conn = self._state().conn
        conn.execute("BEGIN")
        try:
            return operation(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened in this process."""
        with self._all_lock:
            opened, self._all = self._all, []
        for conn, lock_fd in opened:
            try:
                conn.close()
            except sqlite3.Error:
                logger.exception("Closing a connection to %s failed", self.database)
            try:
                os.close(lock_fd)
            except OSError:
                pass
        self._local = _ThreadState()

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(
                f"The channel layer database {DATABASE_NAME!r} has schema version {version}, "
                f"this code expects {SCHEMA_VERSION}; stop every process using it and delete the directory"
            )
        if version == 0:
            # executescript() would commit our transaction first; run the
            # statements one by one inside it instead.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
