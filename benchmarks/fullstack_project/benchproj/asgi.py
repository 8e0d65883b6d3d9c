import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")

from channels.asgi import get_channel_layer  # noqa: E402

channel_layer = get_channel_layer()
