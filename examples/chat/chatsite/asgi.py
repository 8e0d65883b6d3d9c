"""The channel layer handed to ``interface-server``.

Run from ``examples/chat``::

    interface-server chatsite.asgi:channel_layer --port 8000
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

from channels.asgi import get_channel_layer  # noqa: E402  (settings must be chosen first)

channel_layer = get_channel_layer()
