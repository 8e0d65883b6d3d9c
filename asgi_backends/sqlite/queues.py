"""The layer's steps inside one transaction: SQL on a connection, no sockets, no waiting.

Every function here runs inside :meth:`Store.write <.store.Store.write>`, so
each one (and any sequence of them in one transaction) happens entirely or
not at all. The table layout is described in :mod:`.store`.
"""

from __future__ import annotations

import enum
import functools
import random
import sqlite3
from typing import NamedTuple

from .wakeup import HANDOFF_LIMIT

_STATS_SENT = "INSERT INTO stats (queue, sent) VALUES (?, 1) ON CONFLICT (queue) DO UPDATE SET sent = sent + 1"
_STATS_FULL = "INSERT INTO stats (queue, full) VALUES (?, 1) ON CONFLICT (queue) DO UPDATE SET full = full + 1"
_INSERT = "INSERT INTO messages (queue, channel, created, expires, data) VALUES (?, ?, ?, ?, ?)"
# Counting stops at the capacity, so a long queue costs no more than a full one.
_COUNT = "SELECT count(*) FROM (SELECT 1 FROM messages WHERE queue = ? LIMIT ?)"
_TAKE_ONE = "DELETE FROM messages WHERE id = (SELECT min(id) FROM messages WHERE queue = ?) RETURNING channel, data"
_CLAIM = "SELECT ticket FROM waiters WHERE queue = ? ORDER BY since LIMIT 1"
_WITHDRAW = "DELETE FROM waiters WHERE ticket = ?"
_REGISTERED = "SELECT 1 FROM waiters WHERE ticket = ? LIMIT 1"
_REGISTER = "INSERT INTO waiters (queue, since, ticket) VALUES (?, ?, ?)"
_EXPIRE = "DELETE FROM messages WHERE expires <= ? RETURNING channel"


class Delivery(NamedTuple):
    """A waiter to wake once the transaction that claimed it has committed.

    ``handed`` is True when the message is *not* in the database: it travels
    only in the datagram to ``ticket`` (a hand-off).
    """

    ticket: str
    queue: str
    channel: str
    data: bytes
    handed: bool


class Wait(enum.Enum):
    """Outcome of :func:`take_or_wait`."""

    DONE = "done"  # a message was taken, or none and the caller does not wait
    WAITING = "waiting"  # the caller's ticket is recorded: sleep until a datagram answers it
    CLAIMED = "claimed"  # a sender withdrew the caller's ticket: its datagram is on the way


@functools.lru_cache(maxsize=64)
def _take_sql(count: int) -> str:
    # The first message of the first non-empty queue in the order given (the
    # caller shuffles them so no channel starves); one index seek per queue.
    heads = " UNION ALL ".join(
        f"SELECT {position} AS position, (SELECT min(id) FROM messages WHERE queue = ?) AS id"
        for position in range(count)
    )
    return (
        f"DELETE FROM messages WHERE id = (SELECT id FROM ({heads}) WHERE id IS NOT NULL ORDER BY position LIMIT 1) "
        "RETURNING channel, data"
    )


def purge(conn: sqlite3.Connection, now: float) -> None:
    """Delete expired messages; their channels leave every group (they stopped reading)."""
    expired = conn.execute(_EXPIRE, (now,)).fetchall()
    if expired:
        conn.executemany("DELETE FROM groups WHERE channel = ?", set(expired))


def claim(conn: sqlite3.Connection, queue: str) -> str | None:
    """Withdraw the ticket waiting longest on ``queue`` (from all its queues) and return it, or None."""
    row = conn.execute(_CLAIM, (queue,)).fetchone()
    if row is None:
        return None
    conn.execute(_WITHDRAW, row)
    return row[0]


def insert(conn: sqlite3.Connection, queue: str, channel: str, data: bytes, now: float, expiry: float) -> None:
    """Append a message to ``queue`` without any capacity check."""
    conn.execute(_INSERT, (queue, channel, now, now + expiry, data))


def put(
    conn: sqlite3.Connection,
    queue: str,
    channel: str,
    data: bytes,
    capacity: int,
    now: float,
    expiry: float,
    purged: bool = False,
) -> tuple[bool, Delivery | None]:
    """Send one message: hand it to a waiter, or store it unless ``queue`` is full.

    ``purged`` says expired messages were already deleted in this
    transaction (``send_group`` does it once for all members).

    Returns:
        ``(accepted, delivery)``: ``accepted`` is False when the queue was
        full; ``delivery`` names the waiter to wake after commit, if any.
    """
    if len(data) <= HANDOFF_LIMIT:
        ticket = claim(conn, queue)
        if ticket is not None:
            # A waiter records its ticket only when all its queues are
            # empty, and sends go to waiters while there are any: there is
            # normally nothing older to overtake and no capacity to check.
            conn.execute(_STATS_SENT, (queue,))
            return True, Delivery(ticket, queue, channel, data, True)
        check_waiter = False
    else:
        check_waiter = True
    if not purged:
        purge(conn, now)
    if conn.execute(_COUNT, (queue, capacity)).fetchone()[0] >= capacity:
        conn.execute(_STATS_FULL, (queue,))
        return False, None
    insert(conn, queue, channel, data, now, expiry)
    conn.execute(_STATS_SENT, (queue,))
    ticket = claim(conn, queue) if check_waiter else None
    return True, (Delivery(ticket, queue, channel, data, False) if ticket is not None else None)


def redeliver(conn: sqlite3.Connection, failed: Delivery, now: float, expiry: float) -> Delivery | None:
    """``failed``'s waiter is dead: store its message if it was a hand-off, and pick another waiter to wake."""
    if failed.handed:
        insert(conn, failed.queue, failed.channel, failed.data, now, expiry)
    ticket = claim(conn, failed.queue)
    return None if ticket is None else failed._replace(ticket=ticket, handed=False)


def requeue(
    conn: sqlite3.Connection, channel: str, queue: str, data: bytes, now: float, expiry: float
) -> Delivery | None:
    """Store a hand-off its receiver gave up on, and pick a waiter to wake for it."""
    insert(conn, queue, channel, data, now, expiry)
    ticket = claim(conn, queue)
    return None if ticket is None else Delivery(ticket, queue, channel, data, False)


def take(conn: sqlite3.Connection, queues: list[str]) -> tuple[str, bytes] | None:
    """Remove and return ``(channel, data)``: the oldest message of a random non-empty queue, or None."""
    if len(queues) == 1:
        return conn.execute(_TAKE_ONE, queues).fetchone()
    return conn.execute(_take_sql(len(queues)), random.sample(queues, len(queues))).fetchone()


def take_or_wait(
    conn: sqlite3.Connection, queues: list[str], now: float, ticket: str | None, fresh: str | None
) -> tuple[Wait, tuple[str, bytes] | None]:
    """One step of a blocking receive.

    Args:
        ticket: the caller's ticket if it recorded one earlier, else None.
        fresh: the ticket to wait with if nothing is there: a new one to
            record, or ``ticket`` itself to keep waiting; None when the
            caller will not wait (non-blocking, or out of time).
    """
    if ticket is not None and not registered(conn, ticket):
        return Wait.CLAIMED, None
    purge(conn, now)
    found = take(conn, queues)
    if found is not None or fresh is None:
        if ticket is not None:
            conn.execute(_WITHDRAW, (ticket,))
        return Wait.DONE, found
    if ticket is None:
        conn.executemany(_REGISTER, [(queue, now, fresh) for queue in queues])
    return Wait.WAITING, None


def registered(conn: sqlite3.Connection, ticket: str) -> bool:
    """Return True while ``ticket`` is recorded (no sender has claimed it)."""
    return conn.execute(_REGISTERED, (ticket,)).fetchone() is not None


def withdraw(conn: sqlite3.Connection, ticket: str) -> bool:
    """Remove ``ticket``; return False if a sender had already claimed it."""
    return conn.execute(_WITHDRAW, (ticket,)).rowcount > 0
