"""The ASGI entry point, as Channels 1.x's docs wrote it."""

import os

from channels.asgi import get_channel_layer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveblog.settings")

channel_layer = get_channel_layer()
