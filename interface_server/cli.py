"""The ``interface-server`` command (also ``python -m interface_server``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import IO, Any, Protocol, Sequence, runtime_checkable

from .config import ServerConfig, build_endpoint_strings, missing_tls_support
from .server import Server

logger = logging.getLogger(__name__)

__all__ = ["LayerProvider", "build_parser", "config_from_args", "import_layer", "main", "parse_args"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; ``--help`` documents every option."""
    parser = argparse.ArgumentParser(
        prog="interface-server",
        description="Serve HTTP and WebSocket clients, relaying their events over a channel layer.",
    )
    add = parser.add_argument
    # Optional to argparse only so that "--ws-protocol a b myproject.asgi:channel_layer" works; main() requires it.
    add("channel_layer", nargs="?", default=None,
        help="The channel layer to use, as module.path:attribute (e.g. myproject.asgi:channel_layer)")
    add("-b", "--bind", dest="host", default=None, help="Address to bind to (default 127.0.0.1 when -p is given)")
    add("-p", "--port", type=int, default=None, help="TCP port to listen on (0 picks a free one; default 8000)")
    add("-u", "--unix-socket", default=None, help="Listen on this UNIX domain socket path")
    add("--fd", type=int, default=None, dest="file_descriptor", help="Listen on an inherited socket file descriptor")
    add("-e", "--endpoint", dest="endpoints", action="append", default=[],
        help="A Twisted server endpoint string (repeatable), e.g. tcp:8000:interface=127.0.0.1 or unix:/tmp/x.sock")
    add("--access-log", default=None,
        help="Write Apache-style access lines to this file ('-' for stdout; default: no access log)")
    add("-t", "--http-timeout", type=float, default=120.0,
        help="Seconds to wait for the application's response before answering 503 (default 120; 0 = never)")
    add("--websocket_timeout", "--websocket-timeout", dest="websocket_timeout", type=float, default=None,
        help="Longest a WebSocket may stay connected, in seconds from its handshake, whatever its traffic "
             "(default: the layer's group_expiry, 86400 if it has none; 0 = the default; -1 = no limit)")
    add("--websocket_connect_timeout", "--websocket-connect-timeout", dest="websocket_connect_timeout", type=float,
        default=5.0, help="Seconds to hold a WebSocket handshake waiting for the application to accept or "
                          "reject it before refusing it with 503 (default 5; -1 = wait for ever)")
    add("--ping-interval", type=float, default=20.0,
        help="Seconds a WebSocket may receive nothing before it is sent a ping (default 20; 0 = no pings)")
    add("--ping-timeout", type=float, default=30.0,
        help="Seconds to wait for an answer to a ping before dropping the WebSocket (default 30; 0 = never drop)")
    add("--root-path", default="", help="The root_path sent with every request (the prefix the site is mounted under)")
    add("--proxy-headers", action="store_true",
        help="Take client address and scheme from X-Forwarded-For/-Port/-Proto when the peer is a trusted proxy "
             "(see --proxy-headers-from)")
    add("--proxy-headers-from", default="127.0.0.1,::1", metavar="ADDRESSES",
        help="Comma-separated addresses and CIDR networks of the proxies whose X-Forwarded-* headers are "
             "believed, '*' for any peer; UNIX socket peers are always trusted (default 127.0.0.1,::1)")
    add("--ws-protocol", dest="ws_protocols", nargs="+", action="extend", default=[], metavar="NAME",
        help="WebSocket subprotocols the server may agree to (several after one option, or repeat it)")
    add("--body-inline-limit", type=int, default=500 * 1024,
        help="Request bodies larger than this many bytes go on a body channel in chunks (default 512000)")
    add("--max-body-size", type=int, default=100 * 1024 * 1024,
        help="Largest request body accepted; larger ones get 413 (default 104857600)")
    add("--max-header-size", type=int, default=64 * 1024,
        help="Largest request head accepted; larger ones get 431, a longer request line 414 (default 65536)")
    add("--max-pending-bytes", type=int, default=4 * 1024 * 1024,
        help="Most bytes held for a client that does not read what is sent to it, beyond the socket's buffer; "
             "past it a WebSocket is closed with 1008 (default 4194304)")
    add("--websocket-max-message-size", type=int, default=None,
        help="Largest message a WebSocket client may send; larger ones close it with 1009 before being read "
             "(default: the layer's max_message_size less the websocket.receive envelope)")
    add("--websocket-max-frame-size", type=int, default=None,
        help="Largest frame a WebSocket client may send; larger ones close it with 1009 before being read "
             "(default: the message limit)")
    add("--websocket-max-in-flight", type=int, default=32,
        help="Messages from one WebSocket that may wait to be sent to the layer before reading from it "
             "pauses (default 32)")
    add("--websocket-handler-timeout", type=float, default=60.0,
        help="For Channels 2-4 consumers on workers: seconds one event may take at a worker before the "
             "socket is closed with 1011, or an HTTP consumer's response is ended (default 60)")
    add("--layer-io", choices=("reactor", "threads"), default="reactor",
        help="How the layer is talked to: 'reactor' (default) pipelines sends and reply receives in the "
             "event loop when the layer can (Redis over TCP or a Unix socket), else uses threads; "
             "'threads' always uses the sender and reply threads")
    add("--sender-threads", type=int, default=4,
        help="Threads sending requests and frames to the layer when it is talked to through threads, so "
             "its round trips never stall the event loop (default 4; 0 = send from the event loop)")
    add("--keepalive-timeout", type=float, default=75.0,
        help="Seconds an idle keep-alive HTTP connection is kept open (default 75)")
    add("--request-head-timeout", type=float, default=20.0,
        help="Seconds a request head may take to arrive, from its first byte (from the connection's accept for "
             "its first request); not extended by each byte; past it 408 and close (default 20)")
    add("--request-body-timeout", type=float, default=30.0,
        help="Seconds a request body may go without a byte arriving before 408 and close (default 30)")
    add("--websocket-close-timeout", type=float, default=5.0,
        help="Seconds a closing WebSocket may take to finish (the client's close frame, or the last bytes "
             "going out) before the connection is aborted (default 5)")
    add("--send-timeout", type=float, default=60.0,
        help="Seconds a client may leave what the server wrote for it unread (the socket's send buffer full) "
             "before the connection is aborted (default 60; 0 = never)")
    add("--shutdown-timeout", type=float, default=10.0,
        help="On SIGTERM, seconds in-flight HTTP responses get to finish (default 10)")
    add("--force-sync", action="store_true",
        help="Accepted for compatibility with Daphne and ignored: replies are never polled")
    add("-v", "--verbosity", type=int, default=1, choices=[0, 1, 2, 3],
        help="0 errors, 1 startup and warnings (default), 2 every request and connection, 3 debugging")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (``sys.argv[1:]`` by default), exiting with status 2 and a message if it is wrong.

    The channel layer path may come after ``--ws-protocol NAME ...``, which
    would otherwise swallow it: a subprotocol name cannot contain ``:``
    (RFC 6455 makes it an HTTP token), a layer path must.
    """
    args = parser.parse_args(argv)
    if args.channel_layer is None:
        paths = [name for name in args.ws_protocols if ":" in name]
        if not paths:
            parser.error("the following arguments are required: channel_layer")
        args.channel_layer = paths[-1]
        args.ws_protocols = [name for name in args.ws_protocols if name != paths[-1]]
    return args


@runtime_checkable
class LayerProvider(Protocol):
    """An application object that knows the channel layer to serve (a Channels 2-4 ``ProtocolTypeRouter``)."""

    def channel_layer_for_server(self) -> Any: ...


def import_layer(path: str) -> Any:
    """Import ``module.path:attribute`` and return the channel layer it names.

    The attribute may be the layer itself (``myproject.asgi:channel_layer``)
    or an application offering ``channel_layer_for_server()``
    (``myproject.asgi:application``, a ``ProtocolTypeRouter``).

    Raises:
        ValueError: the path has no ``:attribute`` part, or the attribute is missing.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"channel layer must be given as module.path:attribute, not {path!r}")
    if "" not in sys.path and "." not in sys.path:
        # Like Daphne: the current directory holds the project (its asgi.py).
        sys.path.insert(0, "")
    module = importlib.import_module(module_name)
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if isinstance(found, LayerProvider):
        return found.channel_layer_for_server()
    return found


def _configure_logging(verbosity: int) -> None:
    level = {0: logging.ERROR, 1: logging.INFO, 2: logging.INFO, 3: logging.DEBUG}[verbosity]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if verbosity < 2:
        # Per-request notices stay quiet unless asked for with -v 2.
        logging.getLogger("interface_server.http_protocol").setLevel(logging.WARNING)


def config_from_args(args: argparse.Namespace, access_log: IO[str] | None) -> ServerConfig:
    """Build the :class:`ServerConfig` for parsed command-line arguments."""
    endpoints = list(args.endpoints)
    host = args.host
    port = args.port
    if host is None and port is not None:
        host = "127.0.0.1"
    if port is None and host is not None:
        port = 8000
    endpoints += build_endpoint_strings(host, port, args.unix_socket, args.file_descriptor)
    if not endpoints:
        endpoints = build_endpoint_strings("127.0.0.1", 8000)
    return ServerConfig(
        endpoints=endpoints,
        http_timeout=args.http_timeout or None,
        websocket_timeout=args.websocket_timeout,
        websocket_connect_timeout=args.websocket_connect_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        root_path=args.root_path,
        proxy_headers=args.proxy_headers,
        proxy_headers_from=args.proxy_headers_from,
        ws_protocols=args.ws_protocols,
        access_log=access_log,
        verbosity=args.verbosity,
        body_inline_limit=args.body_inline_limit,
        max_body_size=args.max_body_size,
        max_header_size=args.max_header_size,
        shutdown_timeout=args.shutdown_timeout,
        sender_threads=args.sender_threads,
        layer_io=args.layer_io,
        keepalive_timeout=args.keepalive_timeout,
        request_head_timeout=args.request_head_timeout,
        request_body_timeout=args.request_body_timeout,
        max_pending_bytes=args.max_pending_bytes,
        send_timeout=args.send_timeout or None,
        websocket_close_timeout=args.websocket_close_timeout,
        websocket_max_message_size=args.websocket_max_message_size,
        websocket_max_frame_size=args.websocket_max_frame_size,
        websocket_max_in_flight=args.websocket_max_in_flight,
        websocket_handler_timeout=args.websocket_handler_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interface server from command-line arguments; return the exit status."""
    parser = build_parser()
    args = parse_args(parser, argv)
    tls_problem = missing_tls_support(args.endpoints)
    if tls_problem is not None:
        # One line, no usage dump: the command line is fine, the installation is not.
        parser.exit(2, f"{parser.prog}: error: {tls_problem}\n")
    _configure_logging(args.verbosity)
    try:
        layer = import_layer(args.channel_layer)
    except (ValueError, ImportError) as exc:
        parser.error(f"cannot load channel layer {args.channel_layer!r}: {exc}")
    access_log = None
    if args.access_log == "-":
        access_log = sys.stdout
    elif args.access_log:
        access_log = open(args.access_log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    try:
        config = config_from_args(args, access_log)
    except ValueError as exc:
        parser.error(str(exc))

    def announce(addresses: list[str]) -> None:
        logger.info("Listening on %s, channel layer %s (%s)", ", ".join(addresses), args.channel_layer,
                    type(layer).__module__ + "." + type(layer).__qualname__)

    config = _replace_on_ready(config, announce)
    return Server(layer, config).run()


def _replace_on_ready(config: ServerConfig, callback: Any) -> ServerConfig:
    import dataclasses

    return dataclasses.replace(config, on_ready=callback)
