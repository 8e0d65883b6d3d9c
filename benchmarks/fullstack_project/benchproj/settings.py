"""Settings valid for both stacks: Django 5 + this project, Django 2.2 + Channels 1.1.8.

The backend path is the historical ``asgi_redis`` one; this project maps it
to its own Redis layer. ``BENCH_REDIS_PORT`` picks the Redis server;
``BENCH_CAPACITY`` the channel capacity (1000 if unset, the layer's own
default if ``default``).
"""

import os

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
ROOT_URLCONF = "benchproj.urls"
DATABASES = {}
USE_TZ = True
LOGGING_CONFIG = None
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgi_redis.RedisChannelLayer",
        "CONFIG": {"hosts": [("127.0.0.1", int(os.environ.get("BENCH_REDIS_PORT", "6379")))]},
        "ROUTING": "benchproj.routing.channel_routing",
    },
}
# capacity 1000 (not 100) unless asked: on Channels 1.x one interface server's
# replies share one process-specific prefix, and 100 WebSocket clients would fill 100.
if os.environ.get("BENCH_CAPACITY", "1000") != "default":
    CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] = int(os.environ.get("BENCH_CAPACITY", "1000"))
