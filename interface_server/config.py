"""Every option of the interface server, in one frozen dataclass.

The CLI builds a :class:`ServerConfig` from its arguments; embedders (the
Django ``runserver`` command) build one directly. Nothing else reads options.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import IO, Callable, Sequence

from asgi_backends.base import ChannelLayer

from .proxy import parse_trusted

__all__ = ["ServerConfig", "build_endpoint_strings", "missing_tls_support"]
"""Seconds a WebSocket may live when neither the option nor the layer's ``group_expiry`` says."""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Options of one interface server, each with the default the CLI has too.

    Attributes:
        endpoints: Twisted server endpoint strings to listen on
            (``"tcp:port=8000:interface=127.0.0.1"``, ``"unix:/tmp/x.sock"``,
            ``"fd:fileno=3"`` for an inherited socket of any family, or
            ``"fd:domain=INET6:fileno=3"``; ``"ssl:..."`` needs the ``tls``
            extra). See :func:`build_endpoint_strings`. Default
            ``("tcp:port=8000:interface=127.0.0.1",)``.
        http_timeout: seconds to wait for the application to start a
            response before answering ``503``; ``None`` waits for ever.
            Default 120.
        websocket_timeout: the longest a WebSocket may live, in seconds
            counted from its opening handshake (Daphne 1.x's
            ``websocket_timeout``): once that has passed the server closes
            the socket with code 1000, however busy it is -- neither traffic
            nor pings extend it. Default ``None``, which (like ``0``) means
            the layer's ``group_expiry`` (86400, one day, if the layer has
            none), so a socket does not outlive its group memberships; a
            negative number (``-1``) means no limit. Idle and dead peers are
            the business of ``ping_interval`` and ``ping_timeout``.
        websocket_connect_timeout: seconds the opening handshake is held
            waiting for the application to accept or reject it; when they
            pass unanswered the handshake is refused with ``503``. Default 5
            (as Daphne's CLI); ``None`` or a negative number (``-1``) waits
            for ever; ``0`` raises :class:`ValueError` (it would refuse every
            handshake).
        ping_interval: seconds a WebSocket may go without receiving anything
            before the server sends it a ping. Default 20; ``0`` sends no
            pings.
        ping_timeout: seconds to wait, after a ping, for the client to send
            anything (its pong) before the connection is dropped (the
            application gets ``websocket.disconnect`` with code 1006).
            Default 30; ``0`` never drops.
        root_path: the ``root_path`` sent with every request (the prefix the
            site is mounted under behind a proxy). Default ``""``.
        proxy_headers: take ``client`` and ``scheme`` from ``X-Forwarded-For``
            / ``X-Forwarded-Port`` / ``X-Forwarded-Proto`` when the peer is a
            trusted proxy (``proxy_headers_from``): the client is the
            rightmost ``X-Forwarded-For`` entry that is not itself a trusted
            proxy. Default False.
        proxy_headers_from: the peers whose proxy headers are believed:
            IP addresses and CIDR networks (a sequence, or one
            comma-separated string), ``"*"`` for every peer. Peers on a UNIX
            socket are always trusted. Default ``("127.0.0.1", "::1")``.
        ws_protocols: WebSocket subprotocols the server may agree to; the
            first one the client offers that is listed here is chosen.
            Default none.
        access_log: a writable text stream for Apache-style access lines, or
            ``None`` (the default) for no access log.
        verbosity: 0 errors only, 1 startup and warnings, 2 every request
            and connection, 3 debugging. Default 1.
        body_inline_limit: request bodies up to this many bytes travel inline
            in ``body``; of a larger one the first this many bytes do, and
            the rest goes on a ``body_channel`` in chunks of this size.
            Default 512000.
        max_body_size: largest request body accepted (``413`` beyond it).
            Default 104857600 (100 MiB).
        max_header_size: largest request head (request line and headers)
            accepted (``431`` beyond it, ``414`` when the request line alone
            is longer); also the most a chunked body's trailers may take, and
            the most pipelined requests read ahead of the one being answered
            may take. Default 65536.
        websocket_receive_retry: seconds to keep retrying a ``websocket.receive``
            send that hit ``ChannelFull`` before closing with 1013. Default 1.
        sender_threads: threads that send hot-path messages to the layer, so
            a send's network round trip never stalls the reactor (a reactor
            turn's messages go to one thread; a connection sticks to its
            thread while its messages there are unfinished, keeping its
            order; the others take over while one retries a full channel);
            0 sends inline in the reactor thread. Default 4. Used only when
            the layer is not talked to from the reactor (see ``layer_io``).
        layer_io: ``"reactor"`` (default): when the layer offers a client
            for the reactor (the Redis layer over plain TCP or a Unix
            socket), sends and reply receives run in the reactor thread,
            pipelined, with no sender or reply threads; other layers fall
            back to threads. ``"threads"``: always the sender and reply
            threads.
        shutdown_timeout: on SIGTERM/``stop()``, seconds in-flight HTTP
            responses get to finish before their connections are closed.
            Default 10.
        keepalive_timeout: seconds an idle keep-alive HTTP connection is kept.
            Default 75.
        request_head_timeout: seconds a request head (request line and
            headers) may take to arrive, counted from its first byte -- and
            for a connection's first request from the moment it was accepted,
            so a connection that never sends a byte is closed then too. One
            deadline, not reset by each byte (a head trickled in slowly is cut
            off, ``408``). Default 20.
        request_body_timeout: seconds a request body may go without a byte
            arriving (while the server is reading it) before the request is
            cut off with ``408``; also how long a body may make no progress
            towards the layer. Default 30.
        signal_handlers: install SIGTERM/SIGINT handlers in ``Server.run()``
            (only when it runs in the main thread). Default True.
        on_ready: called in the reactor thread, once every endpoint listens,
            with the list of listening addresses as strings
            (``"tcp:127.0.0.1:8000"``, ``"unix:/tmp/x.sock"``). Default ``None``.
        websocket_close_timeout: seconds a closing WebSocket may take to finish
            -- the peer's answering close frame, or our last bytes going out --
            before the connection is aborted. Default 5.
        send_timeout: seconds a client may leave what the server has written
            for it unread -- the socket's send buffer full, never draining --
            before the connection is aborted (one log line; for a WebSocket
            too). Without it a client that stops reading holds its
            connection for ever once the response fits ``max_pending_bytes``,
            even after the server has closed its side. ``None``: no limit.
            Default 60 (as nginx's ``send_timeout``).
        max_pending_bytes: most bytes the server holds for one connection
            whose client does not read what the application sends, beyond the
            socket's own send buffer (64 KiB) and the write that filled it; past
            it a WebSocket is closed with 1008 (policy violation), with one log
            line, and an HTTP response is aborted (the client sees it cut
            short). It also bounds the payload bytes of one connection's
            messages waiting to be sent to the layer (for HTTP, a request
            body's chunks) before reading from it pauses.
            Default 4194304 (4 MiB).
        websocket_max_message_size: largest message (after reassembling its
            frames) a WebSocket client may send; larger ones close the socket
            with 1009 as soon as a frame header announces them, before their
            payload is read. Default ``None``: the layer's ``max_message_size``
            (1 MiB) less the rest of a ``websocket.receive`` message (reply
            channel, path and order, about 110 bytes plus the path), so that
            every message accepted fits the layer.
        websocket_max_frame_size: largest single frame a WebSocket client may
            send (1009 beyond it, before its payload is read). Default
            ``None``: the message limit.
        websocket_max_in_flight: messages from one WebSocket that may wait to be
            sent to the layer before reading from it pauses (it resumes when
            half have gone). Default 32.
        websocket_handler_timeout: for a connection served by a Channels 2-4
            consumer on workers (see :mod:`interface_server.turns`), the longest
            one event may take at a worker before the socket is closed with
            1011 (its worker died, or the handler hangs); for an HTTP consumer
            (:mod:`interface_server.http_turns`), the longest a turn may go
            without output before its response is ended. Default 60.
        server_name: the value of the ``Server`` response header when the
            application sets none (empty: no header). Default
            ``"interface-server"``.

    WebSocket timeouts are checked periodically (at least once a second), so
    one fires up to that much after its moment, never before it; HTTP
    timeouts are timers on the reactor's clock and fire at their moment.

    Raises:
        ValueError: an option has a value it cannot take (the message names it).
    """

    endpoints: Sequence[str] = ("tcp:port=8000:interface=127.0.0.1",)
    http_timeout: float | None = 120.0
    websocket_timeout: float | None = None
    websocket_connect_timeout: float | None = 5.0
    ping_interval: float = 20.0
    ping_timeout: float = 30.0
    root_path: str = ""
    proxy_headers: bool = False
    proxy_headers_from: Sequence[str] = ("127.0.0.1", "::1")
    ws_protocols: Sequence[str] = ()
    access_log: IO[str] | None = None
    verbosity: int = 1
    body_inline_limit: int = 500 * 1024
    max_body_size: int = 100 * 1024 * 1024
    max_header_size: int = 64 * 1024
    websocket_receive_retry: float = 1.0
    sender_threads: int = 4
    layer_io: str = "reactor"
    shutdown_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    request_head_timeout: float = 20.0
    request_body_timeout: float = 30.0
    signal_handlers: bool = True
    on_ready: Callable[[list[str]], object] | None = None
    send_timeout: float | None = 60.0
    websocket_close_timeout: float = 5.0
    max_pending_bytes: int = 4 * 1024 * 1024
    websocket_max_message_size: int | None = None
    websocket_max_frame_size: int | None = None
    websocket_max_in_flight: int = 32
    server_name: str = "interface-server"
    websocket_handler_timeout: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str) or not self.endpoints:
            raise ValueError(f"endpoints must be a non-empty list of endpoint strings, not {self.endpoints!r}")
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "ws_protocols", tuple(self.ws_protocols))
        object.__setattr__(self, "proxy_headers_from", parse_trusted(self.proxy_headers_from))
        if not isinstance(self.sender_threads, int) or self.sender_threads < 0:
            raise ValueError(f"sender_threads must be an integer >= 0, not {self.sender_threads!r}")
        if self.layer_io not in ("reactor", "threads"):
            raise ValueError(f"layer_io must be 'reactor' or 'threads', not {self.layer_io!r}")
        for name in ("websocket_max_message_size", "websocket_max_frame_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive number of bytes or None, not {value!r}")
        for name in ("body_inline_limit", "max_body_size", "max_header_size", "max_pending_bytes",
                     "websocket_max_in_flight"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.websocket_timeout == 0:
            # Daphne: a zero websocket_timeout falls back to the layer's group_expiry.
            object.__setattr__(self, "websocket_timeout", None)
        connect = self.websocket_connect_timeout
        if connect is not None and connect < 0:
            object.__setattr__(self, "websocket_connect_timeout", None)
        elif connect == 0:
            raise ValueError("websocket_connect_timeout must be a positive number of seconds, "
                             "or -1 (or None) to wait for ever, not 0")
        for name in ("shutdown_timeout", "keepalive_timeout", "request_head_timeout", "request_body_timeout",
                     "websocket_close_timeout", "websocket_handler_timeout"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.send_timeout is not None and not self.send_timeout > 0:
            raise ValueError(f"send_timeout must be a positive number of seconds or None, not {self.send_timeout!r}")
        if self.http_timeout is not None and self.http_timeout <= 0:
            raise ValueError(f"http_timeout must be positive or None, not {self.http_timeout!r}")
        if self.ping_interval < 0 or self.ping_timeout < 0:
            raise ValueError(
                f"ping_interval and ping_timeout must not be negative, not {self.ping_interval!r}/{self.ping_timeout!r}"
            )
        if self.root_path.endswith("/"):
            raise ValueError(f"root_path must not end with '/', not {self.root_path!r}")

    def websocket_lifetime(self, layer: ChannelLayer) -> float | None:
        """Return the longest a WebSocket may live with ``layer``, in seconds.

        Returns:
            ``websocket_timeout`` when it is positive; the layer's
            ``group_expiry`` when it is ``None`` (as Daphne did: a socket
            outliving its group memberships would miss group messages);
            ``None`` (no limit) when it is negative.
        """
        timeout = self.websocket_timeout
        if timeout is None:
            return float(layer.group_expiry)
        return None if timeout < 0 else float(timeout)


def build_endpoint_strings(
    host: str | None = None,
    port: int | None = None,
    unix_socket: str | None = None,
    file_descriptor: int | None = None,
) -> list[str]:
    """Return the endpoint strings for the classic host/port/socket/fd options.

    Returns:
        A list with one endpoint string per option given (possibly empty).

    Raises:
        ValueError: only one of ``host`` and ``port`` was given.
    """
    endpoints = []
    if host is not None or port is not None:
        if host is None or port is None:
            raise ValueError(f"give both host and port (got host={host!r}, port={port!r})")
        # IPv6 addresses contain colons, which endpoint strings use as separators.
        host = host.strip("[]").replace(":", r"\:")
        endpoints.append(f"tcp:port={int(port)}:interface={host}")
    if unix_socket is not None:
        endpoints.append(f"unix:{unix_socket}")
    if file_descriptor is not None:
        # No domain: the server reads the family (IPv4, IPv6, Unix) from the socket itself.
        endpoints.append(f"fd:fileno={int(file_descriptor)}")
    return endpoints


TLS_HINT = "install the tls extra: pip install 'django-channels-worker[tls]'"
"""How to get the TLS support that ``ssl:`` endpoints need (pyOpenSSL, service_identity)."""


def missing_tls_support(endpoints: Sequence[str]) -> str | None:
    """Say why the TLS endpoints among ``endpoints`` cannot listen, if they cannot.

    Twisted's ``ssl:`` server endpoints need pyOpenSSL, which is not a
    dependency of this package (the ``tls`` extra installs it).

    Returns:
        A one-line error message naming the first ``ssl:`` endpoint and how to
        install what it needs, or ``None`` when there is no such endpoint or
        pyOpenSSL can be imported.
    """
    needing = [e for e in endpoints if e.split(":", 1)[0].strip().lower() == "ssl"]
    if not needing:
        return None
    try:
        importlib.import_module("OpenSSL")
    except ImportError:
        return f"endpoint {needing[0]!r} needs pyOpenSSL, which is not installed; {TLS_HINT}"
    return None
