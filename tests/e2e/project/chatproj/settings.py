"""Settings of the end-to-end test project.

The layer is chosen by the environment the test sets: ``E2E_REDIS_URL`` for
the Redis layer (sessions then live in Redis too, shared by every process),
``E2E_SQLITE_PATH`` for the same-machine SQLite layer (sessions in a file
cache), otherwise the in-memory layer for ``runserver``.
"""

import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "e2e-test-project-not-secret"
DEBUG = os.environ.get("E2E_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "chat",
    "channels",
]
MIDDLEWARE = []
ROOT_URLCONF = "chatproj.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("E2E_DB", os.path.join(BASE_DIR, "db.sqlite3")),
    }
}
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

REDIS_URL = os.environ.get("E2E_REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_redis.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
            "ROUTING": "chatproj.routing.channel_routing",
        },
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
elif os.environ.get("E2E_SQLITE_PATH"):
    # The same-machine layer; sessions go to a file cache every process shares.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_backends.sqlite.SQLiteChannelLayer",
            "CONFIG": {"path": os.environ["E2E_SQLITE_PATH"]},
            "ROUTING": "chatproj.routing.channel_routing",
        },
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["E2E_SQLITE_PATH"] + "-cache",
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgiref.inmemory.ChannelLayer",
            "ROUTING": "chatproj.routing.channel_routing",
        },
    }
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
