"""The Django app configuration."""

from __future__ import annotations

from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    """Wires channels into Django when the app registry is ready.

    * Database connections are checked before and after every consumer, as
      Django does around a request (see :class:`channels.worker.ChannelsHooks`).
    * The layer registry is reset when ``CHANNEL_LAYERS`` changes (tests).
    * ``manage.py runserver`` is served by this app's command even when
      ``django.contrib.staticfiles`` is listed before ``channels`` (the
      command table is a plain dict Django caches; one entry is replaced,
      no class is rewritten).
    """

    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from django.core.management import get_commands
        from django.core.signals import setting_changed

        setting_changed.connect(_settings_changed, dispatch_uid="channels.settings_changed")
        get_commands()["runserver"] = "channels"


def _settings_changed(setting: str, **kwargs: object) -> None:
    from . import settings as channel_settings
    from .asgi import channel_layers

    if setting == "CHANNEL_LAYERS":
        channel_layers.reset()
    channel_settings.clear_cache()
