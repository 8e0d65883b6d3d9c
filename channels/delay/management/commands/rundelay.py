"""``manage.py rundelay``: the delay server for ``asgi.delay`` messages."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management import BaseCommand, CommandError

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.delay.worker import DelayWorker
from channels.log import setup_console_logging
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
        try:
            layer = channel_layers[alias]
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if getattr(layer, "cross_process", True) is False:
            raise CommandError(
                f"Channel layer {alias!r} ({name_that_thing(type(layer))}) cannot cross processes, so the delay "
                "server would never see other processes' messages: configure a Redis or same-machine layer."
            )
        if options["verbosity"]:
            kind = name_that_thing(type(layer))
            self.stdout.write(f"Running the delay server against channel layer {alias} ({kind})")
            self.stdout.flush()
        DelayWorker(layer).run()
