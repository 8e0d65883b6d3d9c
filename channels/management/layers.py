"""Looking up a channel layer for a management command that runs beside other processes."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.utils import name_that_thing


def cross_process_layer(alias: str, role: str) -> ChannelLayerWrapper:
    """Return the layer ``alias``, which must reach other processes.

    ``role`` finishes the sentence explaining the refusal ("a separate
    worker would never see its messages").

    Raises:
        CommandError: the alias is not configured, or its layer lives in one
            process only (the in-memory layer).
    """
    try:
        layer = channel_layers[alias]
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc
    if not layer.cross_process:
        raise CommandError(
            f"Channel layer {alias!r} ({name_that_thing(type(layer.channel_layer))}) cannot cross processes, so {role}"
        )
    return layer
