"""The same-machine channel layer: SQLite in a shared directory, no server to run.

Use it when the interface server and workers are separate processes on one
machine and there is no Redis::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_backends.sqlite.SQLiteChannelLayer",
            "CONFIG": {"path": "/tmp/myproject-channels"},
            "ROUTING": "myproject.routing.channel_routing",
        },
    }
"""

from .layer import SQLiteChannelLayer

ChannelLayer = SQLiteChannelLayer

__all__ = ["ChannelLayer", "SQLiteChannelLayer"]
