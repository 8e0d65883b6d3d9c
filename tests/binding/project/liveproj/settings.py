"""Settings of the live-data test project.

The environment picks the layer: ``LIVE_REDIS_URL`` for Redis, otherwise the
same-machine layer in the directory ``LIVE_LAYER_PATH``. ``LIVE_DB`` is the
SQLite database every process shares (sessions live there too).
"""

import os

SECRET_KEY = "live-test-project-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "channels.delay",
    "live",
]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
ROOT_URLCONF = "liveproj.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LIVE_DB", "/tmp/live-project.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if os.environ.get("LIVE_REDIS_URL"):
    _backend = {"BACKEND": "asgi_backends.redis.RedisChannelLayer",
                "CONFIG": {"hosts": [os.environ["LIVE_REDIS_URL"]]}}
else:
    _backend = {"BACKEND": "asgi_backends.sqlite.SQLiteChannelLayer",
                "CONFIG": {"path": os.environ.get("LIVE_LAYER_PATH", "/tmp/live-project-layer")}}
CHANNEL_LAYERS = {"default": {**_backend, "ROUTING": "liveproj.routing.channel_routing"}}
