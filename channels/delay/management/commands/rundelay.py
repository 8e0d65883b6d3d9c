"""``manage.py rundelay``: the delay server for ``asgi.delay`` messages."""

from __future__ import annotations

from typing import Any

from django.core.management import BaseCommand

from channels.asgi import DEFAULT_CHANNEL_LAYER
from channels.delay.worker import DelayWorker
from channels.log import setup_console_logging
from channels.management.layers import cross_process_layer
from channels.utils import name_that_thing


class Command(BaseCommand):
    help = "Runs the delay server: stores asgi.delay messages and sends each one when it falls due."
    leave_locale_alone = True

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER,
                            help="Channel layer alias to use (default: %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        setup_console_logging(options["verbosity"])
        alias = options["layer"]
        layer = cross_process_layer(
            alias,
            "the delay server would never see other processes' messages: configure a Redis or same-machine layer.",
        )
        if options["verbosity"]:
            kind = name_that_thing(type(layer))
            self.stdout.write(f"Running the delay server against channel layer {alias} ({kind})")
            self.stdout.flush()
        DelayWorker(layer).run()
