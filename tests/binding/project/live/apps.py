from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"

    def ready(self):
        # Bindings connect their signals when defined: import them in every
        # process (worker, shell, web), not only where the routing is loaded.
        from . import bindings  # noqa: F401
