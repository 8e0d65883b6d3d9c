"""Settings of the streaming project, as a Channels 4 project has them (the Redis layer from ``E2E_REDIS_URL``)."""

import os

SECRET_KEY = "streaming-project-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels", "news"]
MIDDLEWARE = []
ROOT_URLCONF = "config.urls"
DATABASES = {}
USE_TZ = True
ASGI_APPLICATION = "config.asgi.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/0")]},
    },
}
