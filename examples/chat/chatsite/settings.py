"""Settings for the chat example.

The example runs unchanged in three shapes, picked by the ``CHAT_LAYER``
environment variable:

* ``inmemory`` (the default): ``manage.py runserver`` alone, interface server
  and worker threads in one process. Nothing to install or start.
* ``redis``: ``interface-server`` plus ``manage.py runworker`` processes
  sharing the Redis server at ``REDIS_URL`` (default
  ``redis://127.0.0.1:6379/0``) -- the production shape.
* ``sqlite``: the same separate processes on one machine, sharing the
  same-machine layer (SQLite files in the directory ``CHAT_LAYER_PATH``);
  no server to run.

``CHAT_DB_PATH`` moves the SQLite database (the tests use a temporary one).
"""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("CHAT_SECRET_KEY", "chat-example-not-secret-set-CHAT_SECRET_KEY-in-production")
DEBUG = os.environ.get("CHAT_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    host for host in os.environ.get("CHAT_ALLOWED_HOSTS", "").split(",") if host
]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

_sqlite_options = {"timeout": 20}
if django.VERSION >= (5, 1):
    # Several worker threads (and processes) write at once: WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock up front instead
    # of failing half-way through a transaction with "database is locked".
    _sqlite_options.update(transaction_mode="IMMEDIATE",
                           init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DB_PATH", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": _sqlite_options,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"

_layer = os.environ.get("CHAT_LAYER", "inmemory")
if _layer == "redis":
    _backend = {
        "BACKEND": "asgi_backends.redis.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }
elif _layer == "sqlite":
    _backend = {
        "BACKEND": "asgi_backends.sqlite.SQLiteChannelLayer",
        "CONFIG": {"path": os.environ.get("CHAT_LAYER_PATH", str(BASE_DIR / ".channel-layer"))},
    }
elif _layer == "inmemory":
    _backend = {"BACKEND": "asgi_backends.inmemory.ChannelLayer"}
else:
    raise ValueError(f"CHAT_LAYER={_layer!r} is not one of 'inmemory', 'redis', 'sqlite'")

CHANNEL_LAYERS = {"default": {**_backend, "ROUTING": "chatsite.routing.channel_routing"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"chat": {"handlers": ["console"], "level": os.environ.get("CHAT_LOG_LEVEL", "INFO")}},
}
