"""Cross-process wake-ups for blocked receivers: one Unix datagram socket per waiting thread.

A thread blocked in ``receive(block=True)`` owns a bound datagram socket (a
:class:`Waiter`). Each time it goes to sleep it records a *ticket* -- its
socket path plus a fresh number, ``/dir/w-1f….sock#7`` -- in the database
next to the channels it waits on. A sender that finds a ticket withdraws it
in its own transaction and, after committing, sends that socket one datagram
(:class:`Poker`) starting with the ticket's number:

* a *hand-off* -- ``b"7\\n" + channel + b"\\n" + encoded message`` -- when the
  message is at most :data:`HANDOFF_LIMIT` bytes: it never touches the
  database, so the receiver returns it without a transaction of its own;
* a *poke* -- ``b"7\\n"`` -- otherwise: the receiver takes the message from
  the database.

The number tells the receiver which of its tickets a datagram answers, so a
late datagram for a ticket it already gave up on is recognised as such (the
layer puts a late hand-off back into the database) instead of being taken
for the answer to the current one.

The waiter sleeps in ``select``, so an idle process uses no CPU. Sockets live
in ``<path>/wake/`` (or, when that path is too long for a socket address, in
a per-path directory under the system temporary directory). The socket file
of a process killed with SIGKILL stays behind; the first sender that finds
nobody bound to it removes it (see :meth:`Poker.send`).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import select
import socket
import stat
import sys
import tempfile
from typing import NamedTuple

logger = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux and 104 on macOS; leave room for the name.
_MAX_SOCKET_PATH = 100
_SOCKET_NAME_LENGTH = len("w-") + 16 * 2 + len(".sock")

# Linux takes datagrams up to the socket buffer size (~200 KB by default);
# macOS and the BSDs cap local datagrams at about 2 KB unless tuned.
HANDOFF_LIMIT = 60 * 1024 if sys.platform.startswith("linux") else 1800
"""Largest encoded message handed over in a datagram; larger ones go through the database."""


class Datagram(NamedTuple):
    """One wake-up as received: the ticket number it answers and, for a hand-off, the message."""

    number: int
    channel: str | None
    data: bytes | None


def ticket_socket(ticket: str) -> str:
    """Return the socket path of a ticket."""
    return ticket.rpartition("#")[0]


def make_datagram(ticket: str, channel: str | None = None, data: bytes | None = None) -> bytes:
    """Return the datagram answering ``ticket``: a hand-off if ``channel`` is given, else a poke."""
    number = ticket.rpartition("#")[2].encode("ascii")
    if channel is None:
        return number + b"\n"
    return number + b"\n" + channel.encode("ascii") + b"\n" + data


def wake_directory(path: str) -> str:
    """Return (creating it) the directory holding the waiter sockets of the layer at ``path``.

    That is ``<path>/wake``, unless that is too long for a socket address;
    then one private directory per user under the system temporary
    directory, shared by every layer path (a ticket names its socket in
    full, so sockets of different layers can live side by side).

    Raises:
        ValueError: no usable directory (too long, or the shared one is not
            private to this user).
    """
    directory = os.path.join(path, "wake")
    if len(directory) + 1 + _SOCKET_NAME_LENGTH <= _MAX_SOCKET_PATH:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    else:
        directory = os.path.join(tempfile.gettempdir(), f"asgi-sqlite-wake-{os.getuid()}")
        if len(directory) + 1 + _SOCKET_NAME_LENGTH > _MAX_SOCKET_PATH:
            raise ValueError(
                f"Cannot place wake-up sockets for {path!r}: even {directory!r} is too long for a "
                "Unix socket address; use a shorter path, or set TMPDIR to a shorter directory"
            )
        os.makedirs(directory, mode=0o700, exist_ok=True)
        _check_private(directory)
    sweep(directory)
    return directory


def _check_private(directory: str) -> None:
    # A shared temporary directory: someone else could have created this
    # name first to receive our wake-ups (and hand-offs). Refuse unless it is ours alone.
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(
            f"{directory!r} must be a directory owned by this user and closed to others (mode 0700); "
            "remove it or set TMPDIR elsewhere"
        )


def sweep(directory: str) -> None:
    """Remove the socket files nobody is bound to any more (left by killed or ``os._exit``-ed processes)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for name in os.listdir(directory):
            if not (name.startswith("w-") and name.endswith(".sock")):
                continue
            path = os.path.join(directory, name)
            try:
                probe.connect(path)  # connecting sends nothing to a live waiter
            except ConnectionRefusedError:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            except OSError:
                continue
    finally:
        probe.close()


class Waiter:
    """A bound, non-blocking datagram socket one receiving thread sleeps on.

    Args:
        directory: where to bind (see :func:`wake_directory`).
    """

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"w-{secrets.token_hex(16)}.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(self.path)
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self.pid = os.getpid()
        self._number = 0

    def new_ticket(self) -> tuple[int, str]:
        """Return a fresh ``(number, ticket)`` to record in the database."""
        self._number += 1
        return self._number, f"{self.path}#{self._number}"

    def wait(self, timeout: float) -> Datagram | None:
        """Return the next datagram, sleeping up to ``timeout`` seconds for it; None on timeout."""
        datagram = self.read()
        if datagram is not None or timeout <= 0:
            return datagram
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return self.read() if ready else None

    def read(self) -> Datagram | None:
        """Return the next pending datagram without blocking, or None."""
        while True:
            try:
                raw = self._sock.recv(HANDOFF_LIMIT + 256)
            except (BlockingIOError, InterruptedError):
                return None
            number, _, rest = raw.partition(b"\n")
            if not number.isdigit():
                logger.warning("Ignoring a malformed wake-up datagram on %s: %r", self.path, raw[:40])
                continue
            if not rest:
                return Datagram(int(number), None, None)
            channel, _, data = rest.partition(b"\n")
            return Datagram(int(number), channel.decode("ascii", "replace"), data)

    def close(self) -> None:
        """Unlink the socket file (in the process that bound it) and close the socket."""
        if self._sock.fileno() < 0:
            return
        if os.getpid() == self.pid:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self._sock.close()


class Poker:
    """Sends wake-up datagrams to waiters from an unbound socket."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def send(self, ticket: str, datagram: bytes) -> bool | None:
        """Send ``datagram`` to the socket of ``ticket``.

        Returns:
            True when it was queued on the waiter's socket; False when nobody
            is bound there any more (its process died: the stale socket file
            is removed); None when the socket would not take it (its queue is
            full, or the datagram is too large) -- deliver the message some
            other way.
        """
        path = ticket_socket(ticket)
        try:
            self._sock.sendto(datagram, path)
        except (BlockingIOError, InterruptedError):
            return None
        except FileNotFoundError:
            return False
        except ConnectionRefusedError:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOBUFS, errno.EMSGSIZE):
                logger.warning("Cannot wake receiver at %s: %s; it will re-check on its own", path, exc)
            return None
        return True

    def close(self) -> None:
        """Close the sending socket."""
        self._sock.close()
