"""App configuration for the chat example."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The chat app."""

    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Bindings connect their signals when defined; import them in every process.
        from . import bindings  # noqa: F401
