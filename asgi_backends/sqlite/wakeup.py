"""Cross-process wake-ups for blocked receivers: one Unix datagram socket per waiter.

A thread blocked in ``receive(block=True)`` binds a datagram socket (a
:class:`Waiter`) and records its address in the database next to the channels
it waits on. A sender that commits a message looks that address up in the
same transaction and, after committing, sends it one empty datagram
(:class:`Poker`). The waiter sleeps in ``select`` on its socket, so an idle
process uses no CPU and a woken one runs within a context switch of the send.

Sockets live in ``<path>/wake/`` (or, when that path is too long for a socket
address, in a per-path directory under the system temporary directory). The
file of a process killed with SIGKILL stays behind; the first sender that
finds nobody bound to it removes it (see :meth:`Poker.poke`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import select
import socket
import tempfile

logger = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux and 104 on macOS; leave room for the name.
_MAX_SOCKET_PATH = 100
_SOCKET_NAME_LENGTH = len("w-") + 16 * 2 + len(".sock")


def wake_directory(path: str) -> str:
    """Return (creating it) the directory holding the waiter sockets of the layer at ``path``."""
    directory = os.path.join(path, "wake")
    if len(directory) + 1 + _SOCKET_NAME_LENGTH > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
        directory = os.path.join(tempfile.gettempdir(), f"asgi-sqlite-wake-{os.getuid()}-{digest}")
        if len(directory) + 1 + _SOCKET_NAME_LENGTH > _MAX_SOCKET_PATH:
            raise ValueError(
                f"Cannot place wake-up sockets for {path!r}: even {directory!r} is too long for a "
                "Unix socket address; set TMPDIR to a shorter directory"
            )
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return directory


class Waiter:
    """A bound, non-blocking datagram socket one receiving thread sleeps on.

    Args:
        directory: where to bind (see :func:`wake_directory`).
    """

    def __init__(self, directory: str) -> None:
        self.address = os.path.join(directory, f"w-{secrets.token_hex(16)}.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(self.address)
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self.pid = os.getpid()

    def wait(self, timeout: float) -> bool:
        """Sleep until poked or ``timeout`` seconds pass; return True if poked.

        Every pending poke is consumed, so one wake-up covers all the sends
        that happened before it (the caller re-checks the database next).
        """
        try:
            ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            return False
        if not ready:
            return False
        self.drain()
        return True

    def drain(self) -> None:
        """Consume every pending poke without blocking."""
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return

    def close(self) -> None:
        """Unlink the socket file (in the process that bound it) and close the socket."""
        if self._sock.fileno() < 0:
            return
        if os.getpid() == self.pid:
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass
        self._sock.close()


class Poker:
    """Sends wake-up datagrams to waiters from an unbound socket."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def poke(self, address: str) -> bool:
        """Wake the waiter bound at ``address``.

        Returns:
            False when nobody is bound there any more (its process died): the
            stale socket file is removed and the caller should forget the
            waiter and wake another. True otherwise, including when the
            waiter's queue is full of pokes it has not read yet -- it is
            awake already.
        """
        try:
            self._sock.sendto(b"\0", address)
        except (BlockingIOError, InterruptedError):
            return True
        except FileNotFoundError:
            return False
        except ConnectionRefusedError:
            try:
                os.unlink(address)
            except FileNotFoundError:
                pass
            return False
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                return True
            logger.warning("Cannot wake receiver at %s: %s; it will re-check on its own", address, exc)
            return True
        return True

    def close(self) -> None:
        """Close the sending socket."""
        self._sock.close()
