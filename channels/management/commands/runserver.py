"""``manage.py runserver``: the interface server and worker threads in one process.

Django's own ``runserver`` (or the staticfiles one, when installed) is
extended: same address/port argument, autoreload and checks, but the
requests go through the channel layer to in-process worker threads.
``--noworker`` runs only the interface server (workers are separate
``runworker`` processes). When ``CHANNEL_LAYERS`` is not configured an
in-memory layer with the default routing (Django views) is used.
"""

from __future__ import annotations

import sys
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError
from django.db import connections
from django.utils import autoreload

from channels.asgi import DEFAULT_CHANNEL_LAYER, ChannelLayerWrapper, build_layer, channel_layers
from channels.log import setup_console_logging
from channels.utils import name_that_thing

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import Command as BaseRunserver
else:
    from django.core.management.commands.runserver import Command as BaseRunserver


class Command(BaseRunserver):
    help = "Starts an interface server and worker threads for development (HTTP and WebSocket)."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--noworker", action="store_false", dest="run_worker", default=True,
                            help="Run only the interface server; start workers with 'runworker'")
        parser.add_argument("--threads", type=int, default=4,
                            help="Worker threads (default: %(default)s; --nothreading runs one)")
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER,
                            help="Channel layer alias to use (default: %(default)s)")
        parser.add_argument("--http_timeout", type=float, default=60.0,
                            help="Seconds to wait for a response before answering 503 (default: %(default)s)")
        parser.add_argument("--websocket_handshake_timeout", type=float, default=5.0,
                            help="Seconds to wait for a connect consumer's answer (default: %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        setup_console_logging(self.verbosity)
        if options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1, not {options['threads']}")
        if not options.get("use_threading", True):
            options["threads"] = 1  # Django's --nothreading: as in Channels 1.x, one worker thread
        super().handle(*args, **options)

    def get_layer(self, alias: str) -> ChannelLayerWrapper:
        """Return the configured layer, or an in-memory one when none is configured."""
        if alias == DEFAULT_CHANNEL_LAYER and alias not in channel_layers:
            layer = build_layer(alias, "asgi_backends.inmemory.ChannelLayer", {}, [])
            channel_layers.set(alias, layer)
            return layer
        try:
            return channel_layers[alias]
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def inner_run(self, *args: Any, **options: Any) -> None:
        from interface_server.config import ServerConfig
        from interface_server.server import Server

        from channels.worker import ChannelsHooks, Worker

        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        layer = self.get_layer(options["layer"])
        threads = options["threads"]
        worker = None
        if options["run_worker"]:
            router = layer.router
            if self._serve_static(options):
                from channels.staticfiles import StaticFilesRouter

                router = StaticFilesRouter(router)
            worker = Worker(layer, router=router, hooks=ChannelsHooks(log_consumers=self.verbosity > 1),
                            threads=threads, signal_handlers=False)
            worker.start()
        elif not layer.cross_process:
            self.stderr.write(f"Warning: --noworker with {name_that_thing(type(layer.channel_layer))}, which cannot cross "
                              "processes: nothing will answer requests.")

        host = self.addr if not self._raw_ipv6 else self.addr.replace(":", r"\:")
        kind = "tcp6" if self.use_ipv6 else "tcp"
        config = ServerConfig(
            endpoints=[f"{kind}:port={int(self.port)}:interface={host}"],
            http_timeout=options["http_timeout"],
            websocket_connect_timeout=options["websocket_handshake_timeout"],
            access_log=sys.stderr if self.verbosity > 1 else None,
            verbosity=self.verbosity,
            signal_handlers=True,  # only installed when we run in the main thread (--noreload)
            on_ready=lambda addresses: self._announce(layer, options, addresses),
        )
        server = Server(layer.channel_layer, config)
        try:
            code = server.run()
        finally:
            if worker is not None:
                worker.stop()
                worker.join(5)
        if code:
            self.stderr.write(f"Error: could not listen on {config.endpoints[0]} (is the port in use?)")
            import os

            os._exit(1)  # sys.exit does not end the process from the autoreloader's thread

    def _serve_static(self, options: dict[str, Any]) -> bool:
        from channels.staticfiles import should_serve_static

        return options.get("use_static_handler", True) and should_serve_static(options.get("insecure_serving", False))

    def _announce(self, layer: ChannelLayerWrapper, options: dict[str, Any], addresses: list[str]) -> None:
        workers = f"{options['threads']} worker thread(s)" if options["run_worker"] else "no workers (--noworker)"
        addr = f"[{self.addr}]" if self._raw_ipv6 else self.addr
        self.stdout.write(
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting development server at http://{addr}:{self.port}/\n"
            f"Channel layer {layer}, {workers}\n"
            "Quit the server with CONTROL-C."
        )
        self.stdout.flush()
