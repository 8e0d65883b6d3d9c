"""Every option of the interface server, in one frozen dataclass.

The CLI builds a :class:`ServerConfig` from its arguments; embedders (the
Django ``runserver`` command) build one directly. Nothing else reads options.
"""

from __future__ import annotations

import dataclasses
from typing import IO, Callable, Sequence

__all__ = ["ServerConfig", "build_endpoint_strings"]


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Options of one interface server.

    Attributes:
        endpoints: Twisted server endpoint strings to listen on
            (``"tcp:port=8000:interface=127.0.0.1"``, ``"unix:/tmp/x.sock"``,
            ``"fd:domain=INET:fileno=3"``). See :func:`build_endpoint_strings`.
        http_timeout: seconds to wait for the application to start a
            response before answering ``503``; ``None`` waits for ever.
        websocket_timeout: seconds a WebSocket may stay idle (nothing
            received, not even a pong) before it is closed; ``None`` or a
            negative number disables it.
        websocket_connect_timeout: seconds the opening handshake is held
            waiting for the application's answer before it is refused (503).
        ping_interval: seconds between server pings on idle WebSockets
            (0 disables pings).
        ping_timeout: seconds to wait for a pong before dropping the connection.
        root_path: the ``root_path`` sent with every request (the prefix the
            site is mounted under behind a proxy).
        proxy_headers: trust ``X-Forwarded-For`` / ``X-Forwarded-Port`` /
            ``X-Forwarded-Proto`` for ``client`` and ``scheme``.
        ws_protocols: WebSocket subprotocols the server may agree to; the
            first one the client offers that is listed here is chosen.
        access_log: a writable text stream for Apache-style access lines, or
            ``None`` for no access log.
        verbosity: 0 errors only, 1 startup and warnings, 2 every request
            and connection, 3 debugging.
        body_inline_limit: request bodies up to this many bytes travel inline
            in ``body``; larger ones go on a ``body_channel`` in chunks of
            this size.
        max_body_size: largest request body accepted (``413`` beyond it).
        max_header_size: largest request head (request line and headers)
            accepted (``431`` beyond it).
        websocket_receive_retry: seconds to keep retrying a ``websocket.receive``
            send that hit ``ChannelFull`` before closing with 1013.
        sender_threads: threads that send hot-path messages to the layer, so
            a send's network round trip never stalls the reactor (each
            connection sticks to one thread, keeping its order); 0 sends
            inline in the reactor thread.
        shutdown_timeout: on SIGTERM/``stop()``, seconds in-flight HTTP
            responses get to finish before their connections are closed.
        keepalive_timeout: seconds an idle keep-alive HTTP connection is kept.
        signal_handlers: install SIGTERM/SIGINT handlers in ``Server.run()``.
        on_ready: called in the reactor thread, once every endpoint listens,
            with the list of listening addresses as strings
            (``"tcp:127.0.0.1:8000"``, ``"unix:/tmp/x.sock"``).
        server_name: the value of the ``Server`` response header when the
            application sets none (empty: no header).
    """

    endpoints: Sequence[str] = ("tcp:port=8000:interface=127.0.0.1",)
    http_timeout: float | None = 120.0
    websocket_timeout: float | None = 86400.0
    websocket_connect_timeout: float = 20.0
    ping_interval: float = 20.0
    ping_timeout: float = 30.0
    root_path: str = ""
    proxy_headers: bool = False
    ws_protocols: Sequence[str] = ()
    access_log: IO[str] | None = None
    verbosity: int = 1
    body_inline_limit: int = 500 * 1024
    max_body_size: int = 100 * 1024 * 1024
    max_header_size: int = 64 * 1024
    websocket_receive_retry: float = 1.0
    sender_threads: int = 4
    shutdown_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    signal_handlers: bool = True
    on_ready: Callable[[list[str]], object] | None = None
    server_name: str = "interface-server"

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str) or not self.endpoints:
            raise ValueError(f"endpoints must be a non-empty list of endpoint strings, not {self.endpoints!r}")
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "ws_protocols", tuple(self.ws_protocols))
        if not isinstance(self.sender_threads, int) or self.sender_threads < 0:
            raise ValueError(f"sender_threads must be an integer >= 0, not {self.sender_threads!r}")
        for name in ("body_inline_limit", "max_body_size", "max_header_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        for name in ("websocket_connect_timeout", "shutdown_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.http_timeout is not None and self.http_timeout <= 0:
            raise ValueError(f"http_timeout must be positive or None, not {self.http_timeout!r}")
        if self.ping_interval < 0 or self.ping_timeout < 0:
            raise ValueError(
                f"ping_interval and ping_timeout must not be negative, not {self.ping_interval!r}/{self.ping_timeout!r}"
            )
        if self.root_path.endswith("/"):
            raise ValueError(f"root_path must not end with '/', not {self.root_path!r}")


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
        endpoints.append(f"fd:domain=INET:fileno={int(file_descriptor)}")
    return endpoints
