"""What ``python -m interface_server faultproj.asgi:channel_layer`` loads."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faultproj.settings")

from channels.asgi import get_channel_layer  # noqa: E402

channel_layer = get_channel_layer()
