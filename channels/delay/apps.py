"""App configuration of the delay server."""

from __future__ import annotations

from django.apps import AppConfig


class DelayConfig(AppConfig):
    """``channels.delay``: the ``DelayedMessage`` table and the ``rundelay`` command."""

    name = "channels.delay"
    label = "channels_delay"
    verbose_name = "Channels delay server"
    default_auto_field = "django.db.models.BigAutoField"
