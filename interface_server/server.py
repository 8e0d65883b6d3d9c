"""The :class:`Server`: listens on endpoints and runs the Twisted reactor.

Usage::

    from interface_server.config import ServerConfig
    from interface_server.server import Server

    server = Server(channel_layer, ServerConfig(endpoints=["tcp:port=8000:interface=127.0.0.1"]))
    server.run()    # blocks in the calling (main) thread until stopped
    server.stop()   # from any thread: graceful shutdown, as for SIGTERM

The Twisted reactor cannot be restarted, so one process runs ``run()`` once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

from twisted.internet import address, endpoints, task
from twisted.internet.defer import DeferredList

from asgi_backends.base import ChannelLayer

from .config import ServerConfig, missing_tls_support
from .context import ServerContext
from .http_protocol import HTTPFactory

logger = logging.getLogger(__name__)

# ServerContext lives in interface_server.context; it is still importable from here.
__all__ = ["Server", "ServerContext", "describe_address", "socket_family"]


_FD_DOMAINS = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}


def socket_family(fileno: int) -> int:
    """Return the address family of the open socket ``fileno`` (left open).

    Raises:
        OSError: ``fileno`` is not an open socket.
    """
    probe = socket.socket(fileno=fileno)  # the family is read from the socket itself
    try:
        return probe.family
    finally:
        probe.detach()


def describe_address(host: Any) -> str:
    """Return ``"tcp:HOST:PORT"`` or ``"unix:PATH"`` for a listening port's address."""
    if isinstance(host, (address.IPv4Address, address.IPv6Address)):
        return f"tcp:{host.host}:{host.port}"
    if isinstance(host, address.UNIXAddress):
        name = host.name.decode() if isinstance(host.name, bytes) else host.name
        return f"unix:{name}"
    return str(host)


class Server:
    """An interface server: HTTP and WebSocket in, channel layer messages out.

    Args:
        channel_layer: the layer to send requests on and receive replies from.
        config: every option; see :class:`~interface_server.config.ServerConfig`.
        reactor: the Twisted reactor (the global one by default).

    Attributes:
        listening: addresses listened on (``"tcp:127.0.0.1:8000"``), filled
            in once every endpoint listens; :attr:`ready` is set then.
        ready: a :class:`threading.Event` set when listening (or when
            listening failed; then :attr:`exit_code` is 1).
        exit_code: 0 after a clean shutdown, 1 if an endpoint could not listen.
    """

    def __init__(self, channel_layer: ChannelLayer, config: ServerConfig | None = None, reactor: Any = None) -> None:
        if not isinstance(channel_layer, ChannelLayer):
            raise TypeError(f"channel_layer must be a channel layer (see asgi_backends.base.ChannelLayer), "
                            f"not {channel_layer!r}")
        if config is not None and not isinstance(config, ServerConfig):
            raise TypeError(f"config must be a ServerConfig, not {type(config).__name__}")
        if reactor is None:
            from twisted.internet import reactor
        self.layer = channel_layer
        self.config = config or ServerConfig()
        self.reactor = reactor
        self.ctx: ServerContext | None = None
        self.ports: list[Any] = []
        self.listening: list[str] = []
        self.ready = threading.Event()
        self.exit_code = 0
        self._checker: task.LoopingCall | None = None
        self._stopping = False
        self._finished = False

    # -- running ----------------------------------------------------------------

    def run(self) -> int:
        """Listen and run the reactor until stopped; return the exit code (0 or 1)."""
        self.ctx = ServerContext(self.layer, self.config, self.reactor)
        previous = {}
        if self.config.signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        self.reactor.callWhenRunning(self._start)
        try:
            self.reactor.run(installSignalHandlers=False)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.exit_code

    @property
    def listening_ports(self) -> list[int]:
        """The TCP port numbers listened on (useful with port 0); empty until :attr:`ready`."""
        return [port.getHost().port for port in self.ports
                if isinstance(port.getHost(), (address.IPv4Address, address.IPv6Address))]

    def stop(self) -> None:
        """Shut down gracefully, as for SIGTERM. Safe to call from any thread."""
        self.reactor.callFromThread(self._shutdown)

    def _on_signal(self, signum: int, frame: Any) -> None:
        logger.info("Received %s, shutting down", signal.Signals(signum).name)
        self.reactor.callFromThread(self._shutdown)

    def _start(self) -> None:
        ctx = self.ctx
        factory = HTTPFactory(ctx)
        waiting = [self._listen(description, factory) for description in self.config.endpoints]
        DeferredList(waiting, consumeErrors=True).addCallback(self._listening)
        ctx.start()
        # HTTP timeouts are each connection's own timers; the WebSocket ones are checked here.
        timeouts = [t for t in (ctx.websocket_lifetime, self.config.websocket_connect_timeout,
                                self.config.ping_interval, self.config.ping_timeout)
                    if t is not None and t > 0]
        interval = max(0.05, min([1.0] + [t / 5 for t in timeouts]))
        self._checker = task.LoopingCall(self._check_timeouts)
        self._checker.clock = self.reactor
        self._checker.start(interval, now=False)

    def _listen(self, description: str, factory: HTTPFactory) -> Any:
        from twisted.internet import defer

        try:
            if description.startswith("fd:"):
                # Adopt an inherited listening socket (a process manager opened it).
                options = dict(part.split("=", 1) for part in description[3:].split(":"))
                fileno = int(options["fileno"])
                domain = options.get("domain")
                if domain is None:
                    family = socket_family(fileno)
                elif domain.upper() in _FD_DOMAINS:
                    family = _FD_DOMAINS[domain.upper()]
                else:
                    raise ValueError(f"domain must be INET, INET6 or UNIX, not {domain!r}")
                # An inherited socket may be blocking; a blocking accept() would freeze the reactor.
                os.set_blocking(fileno, False)
                port = self.reactor.adoptStreamPort(fileno, family, factory)
                return defer.succeed(port)
            return endpoints.serverFromString(self.reactor, description).listen(factory)
        except Exception as exc:
            problem = missing_tls_support([description])
            return defer.fail(ValueError(problem or f"bad endpoint {description!r}: {exc}"))

    def _listening(self, results: list[tuple[bool, Any]]) -> None:
        failed = False
        for (ok, value), description in zip(results, self.config.endpoints):
            if ok:
                self.ports.append(value)
                self.listening.append(describe_address(value.getHost()))
            else:
                failed = True
                logger.error("Cannot listen on %s: %s", description, value.getErrorMessage())
        if failed:
            self.exit_code = 1
            self.ready.set()
            self._finish()
            return
        logger.debug("Receiving replies on %s (%s)", self.ctx.prefix,
                     "native twisted receive" if self.ctx.receiver.native else "blocking thread")
        self.ready.set()
        if self.config.on_ready is not None:
            self.config.on_ready(list(self.listening))

    def _check_timeouts(self) -> None:
        now = self.ctx.now()
        for conn in list(self.ctx.ws_connections):
            conn.check_timeouts(now)

    # -- shutting down ---------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._stopping:
            # A second request to stop: do not wait for anyone any more.
            logger.warning("Stopping at once")
            self._finish()
            return
        self._stopping = True
        ctx = self.ctx
        if ctx is None:
            return
        ctx.shutting_down = True
        for port in self.ports:
            port.stopListening()
        for conn in list(ctx.http_connections):
            conn.begin_shutdown()
        for conn in list(ctx.ws_connections):
            conn.begin_shutdown()
        deadline = self.reactor.seconds() + self.config.shutdown_timeout

        def wait() -> None:
            if not ctx.http_connections and not ctx.ws_connections:
                self._finish()
            elif self.reactor.seconds() > deadline:
                logger.warning("Closing %d connection(s) still busy after %.0fs",
                               len(ctx.http_connections) + len(ctx.ws_connections), self.config.shutdown_timeout)
                for conn in list(ctx.http_connections) + list(ctx.ws_connections):
                    conn.outbound.abort()
                self._finish()

        poll = task.LoopingCall(wait)
        poll.clock = self.reactor
        poll.start(0.02)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._checker is not None and self._checker.running:
            self._checker.stop()
        if self.ctx is None:
            self._stop_reactor()
            return
        # Stops receiving; the disconnect messages of the connections just closed are still to be sent.
        self.ctx.stop().addBoth(lambda _: self._stop_reactor())

    def _stop_reactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()
