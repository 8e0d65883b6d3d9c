"""The state one interface server shares between its connections.

A :class:`ServerContext` is what the HTTP and WebSocket protocols hold a
reference to instead of the :class:`~interface_server.server.Server`: the
layer, the options, the reactor (whose clock every HTTP timeout runs on),
the reply receiver, the sender, the access log and the trusted proxies.
Building one starts nothing -- no thread, no receive, no timer --, so a
test can build one on a :class:`twisted.internet.task.Clock` and drive a
protocol through a ``StringTransport``; :meth:`ServerContext.start` (called
by ``Server.run``) starts the sender threads and the reply receiver.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

from twisted.internet import address, defer

from asgi_backends.base import ChannelLayer, ReactorClientSource, ReactorLayerClient

from .access import AccessLogger
from .config import ServerConfig
from .proxy import TrustedProxies
from .repeats import RepeatedWarnings
from .reactor_sender import ReactorSender
from .replies import ReplyReceiver, make_prefix
from .sending import Flow, OnError, Sender, layer_outage
from .ws_framing import SharedFrames
from .ws_protocol import WebSocketProtocol, build_ws_factory

if TYPE_CHECKING:
    from autobahn.twisted.websocket import WebSocketServerFactory
    from twisted.internet.interfaces import IDelayedCall, ITransport

    from .http_parse import RequestHead

logger = logging.getLogger(__name__)

__all__ = ["LayerSender", "Reactor", "ServerContext"]


class Reactor(Protocol):
    """What the protocols use of the reactor: its clock, timers, and a way in from other threads.

    The global reactor provides it; so does a ``task.Clock`` with a
    ``callFromThread`` that calls at once, for tests.
    """

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., object], *args: Any, **kw: Any) -> IDelayedCall: ...

    def callFromThread(self, callable: Callable[..., object], *args: Any, **kw: Any) -> None: ...


class LayerSender(Protocol):
    """The one path every message to the layer takes (:class:`~interface_server.sending.Sender`)."""

    def send(self, key: int, channel: str, message: dict[str, Any], on_error: OnError | None = None,
             retry_full: bool = False, flow: Flow | None = None) -> None: ...

    def close(self) -> defer.Deferred | None:
        """Send what is queued; the Deferred (if any) fires once it is done."""


class ServerContext:
    """State shared by every connection of one server (the protocols' view of it).

    Args:
        layer: the channel layer.
        config: the server's options.
        reactor: the reactor the connections live in (or a test clock).
        sender: what sends messages to the layer; by default a
            :class:`~interface_server.reactor_sender.ReactorSender` when the
            layer has a reactor client (and ``layer_io`` is ``"reactor"``),
            else a :class:`~interface_server.sending.Sender` with the
            configured threads, built (and its threads started) on first use.

    Attributes:
        now: the clock timeouts are measured on (``reactor.seconds``; a test
            may substitute another).
        shutting_down: set once the server has begun to stop.
        http_connections, ws_connections: the open connections of each kind.
    """

    def __init__(self, layer: ChannelLayer, config: ServerConfig, reactor: Reactor,
                 sender: LayerSender | None = None) -> None:
        self.layer = layer
        self.config = config
        self.reactor = reactor
        self.now: Callable[[], float] = reactor.seconds
        self.prefix = make_prefix()
        # One outage for the reply receiver and the sender: one line when the layer goes away, one when it is back.
        self.outage = layer_outage()
        # Refusals under load (a full channel) come in floods: the first of each kind, then a count.
        self.warnings = RepeatedWarnings(reactor)
        # The layer's client for the reactor, if it has one: sends and reply receives then need no threads.
        self.client: ReactorLayerClient | None = None
        if config.layer_io == "reactor" and isinstance(layer, ReactorClientSource):
            self.client = layer.reactor_client(reactor)
        self.receiver = ReplyReceiver(layer, self.prefix, reactor, self.outage, client=self.client)
        self._sender = sender
        self.access_log = AccessLogger(config.access_log) if config.access_log is not None else None
        self.proxies = TrustedProxies(config.proxy_headers_from)
        self.verbose = config.verbosity >= 2
        # None: no limit. Resolved here, where the layer (and its group_expiry) is known.
        self.websocket_lifetime = config.websocket_lifetime(layer)
        # Invalid close codes already warned about (repr of the value), so a buggy app cannot flood the log.
        self.warned_close_codes: set[str] = set()
        # A broadcast's members share one decoded message: its payload is framed once for all of them.
        self.frames = SharedFrames()
        self.server_name = config.server_name.encode("latin-1")
        self.shutting_down = False
        # Spreads connections over the sender threads (id() values share their low bits).
        self.connection_numbers = itertools.count()
        self.http_connections: set[Any] = set()
        self.ws_connections: set[Any] = set()
        self._ws_factory: WebSocketServerFactory | None = None

    @property
    def sender(self) -> LayerSender:
        """The sender every message to the layer goes through (its threads start on first use)."""
        sender = self._sender
        if sender is None:
            config = self.config
            if self.client is not None:
                sender = self._sender = ReactorSender(self.layer, self.client, self.reactor,
                                                      config.websocket_receive_retry, self.outage, self.warnings)
            else:
                sender = self._sender = Sender(self.layer, self.reactor, config.sender_threads,
                                               config.websocket_receive_retry, self.outage, self.warnings)
        return sender

    @sender.setter
    def sender(self, sender: LayerSender) -> None:
        self._sender = sender

    def start(self) -> None:
        """Start the sender threads and receiving replies (reactor thread, once)."""
        self.sender  # noqa: B018 -- builds it, starting its threads
        self.receiver.start()

    def stop(self) -> defer.Deferred:
        """Stop receiving replies and send what is still queued (reactor thread).

        Returns:
            a Deferred firing once what was queued is sent (or the sender
            gave up on it) and the reactor client, if any, is closed.
        """
        self.receiver.stop()
        sent = defer.maybeDeferred(self._sender.close) if self._sender is not None else defer.succeed(None)
        client = self.client
        if client is not None:
            sent.addBoth(lambda _: client.close())
        return sent

    @staticmethod
    def addresses(transport: ITransport) -> tuple[list[Any] | None, list[Any] | None]:
        """Return the ASGI ``client`` and ``server`` of a connection (None for UNIX sockets)."""
        peer, host = transport.getPeer(), transport.getHost()
        client = [peer.host, peer.port] if isinstance(peer, (address.IPv4Address, address.IPv6Address)) else None
        server = [host.host, host.port] if isinstance(host, (address.IPv4Address, address.IPv6Address)) else None
        return client, server

    def proxied(self, head: RequestHead, client: list[Any] | None, scheme: str) -> tuple[Any, str]:
        """Return ``(client, scheme)`` after the request's ``X-Forwarded-*`` headers, if its peer is trusted.

        Only called with ``proxy_headers`` on; ``client`` is the peer. See
        :meth:`interface_server.proxy.TrustedProxies.forwarded`.
        """
        return self.proxies.forwarded(head.forwarded_for, head.forwarded_port, head.forwarded_proto, client, scheme)

    @property
    def ws_factory(self) -> WebSocketServerFactory:
        """The Autobahn factory WebSocket protocols are built from (built on first use)."""
        if self._ws_factory is None:
            self._ws_factory = build_ws_factory(self)
        return self._ws_factory

    def build_websocket(self, head: RequestHead, client: Any, server: Any, scheme: str) -> WebSocketProtocol:
        """Return a WebSocket protocol to take over a connection that asked to upgrade."""
        proto = self.ws_factory.buildProtocol(None)
        proto.setup(self, head, client, server, scheme)
        return proto
