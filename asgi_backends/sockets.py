"""Writing straight to the socket under a Twisted transport.

Twisted buffers every write: it asks the reactor to hear when the socket
can be written (an ``epoll_ctl``), sends on the next turn of the loop and
stops listening (another). For small writes those steps cost more than the
``send``; the interface server's connections and the reactor's Redis
connections therefore send at once when the transport holds nothing of
theirs, and hand the transport only what the kernel does not take.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.interfaces import ISSLTransport, ISystemHandle


def plain_socket(transport: Any) -> socket.socket | None:
    """The socket under ``transport`` if bytes may be written to it directly, else None.

    That is a TCP or Unix transport without TLS (whose bytes must go
    through the TLS layer) and with a real socket (a test's StringTransport
    has none).
    """
    if ISSLTransport.providedBy(transport) or not ISystemHandle.providedBy(transport):
        return None
    handle = transport.getHandle()
    return handle if isinstance(handle, socket.socket) else None


def send_now(sock: socket.socket, data: bytes) -> bytes:
    """Send what the kernel takes of ``data`` at once; return the rest (empty when all of it went).

    A socket that would block, or has failed, takes nothing: the
    transport's own write, handed the rest, meets that and reports it.
    """
    try:
        sent = sock.send(data)
    except OSError:
        return data
    return b"" if sent == len(data) else data[sent:]
