"""``manage.py runworker``: run consumers for messages from a cross-process layer."""

from __future__ import annotations

import gc
from typing import Any

from django.core.management import BaseCommand, CommandError

from channels.asgi import DEFAULT_CHANNEL_LAYER
from channels.log import setup_console_logging
from channels.management.layers import cross_process_layer
from channels.signals import worker_process_ready
from channels.staticfiles import StaticFilesRouter, should_serve_static
from channels.worker import ChannelsHooks, Worker


class Command(BaseCommand):
    help = "Runs a worker: takes messages off the channel layer and runs their consumers."
    leave_locale_alone = True

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER,
                            help="Channel layer alias to use (default: %(default)s)")
        parser.add_argument("--threads", type=int, default=1,
                            help="Worker threads in this process (default: %(default)s). Threads help when "
                                 "consumers wait on I/O; for throughput run more worker processes instead")
        parser.add_argument("--prefetch", type=int, default=1, metavar="N",
                            help="Receive up to N messages ahead while consumers run (default: %(default)s). "
                                 "Faster under load; a prefetched message waits behind a slow consumer. 0 turns it off")
        parser.add_argument("--only-channels", nargs="+", default=None, metavar="GLOB",
                            help="Listen only on channels matching these glob patterns")
        parser.add_argument("--exclude-channels", nargs="+", default=None, metavar="GLOB",
                            help="Do not listen on channels matching these glob patterns")

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        setup_console_logging(verbosity)
        alias = options["layer"]
        layer = cross_process_layer(
            alias,
            "a separate worker would never see its messages: use 'runserver' (which runs workers in-process) "
            "or configure a Redis or same-machine layer.",
        )
        if options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1, not {options['threads']}")
        if options["prefetch"] < 0:
            raise CommandError(f"--prefetch must be 0 or more, not {options['prefetch']}")
        # As Channels 1.x's runworker (and Django's runserver): with DEBUG,
        # static files are served, so a page behind the interface server
        # gets its JavaScript.
        router = StaticFilesRouter(layer.router) if should_serve_static() else layer.router
        try:
            worker = Worker(
                layer,
                router=router,
                hooks=ChannelsHooks(log_consumers=verbosity > 1),
                threads=options["threads"],
                prefetch=options["prefetch"],
                only_channels=options["only_channels"],
                exclude_channels=options["exclude_channels"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity:
            static = ", serving static files (DEBUG)" if router is not layer.router else ""
            self.stdout.write(f"Running worker against channel layer {layer} with {options['threads']} thread(s){static}")
            self.stdout.flush()
        # Everything loaded so far lives as long as the process: keep it out of
        # the garbage collector's full scans, which would otherwise pause
        # message handling.
        gc.freeze()
        worker_process_ready.send(sender=worker)
        worker.run()
