"""Django settings for the channels unit tests (in-memory layer, temp SQLite DB)."""

import os
import tempfile

# One temporary directory per test run: made by the first process that
# imports these settings and inherited (through the environment) by the
# processes the tests start, then removed when that first process exits.
DB_DIR = os.environ.get("CHANNELS_TESTS_DB_DIR")
if DB_DIR is None:
    import atexit
    import shutil

    DB_DIR = os.environ["CHANNELS_TESTS_DB_DIR"] = tempfile.mkdtemp(prefix="channels-tests-")
    atexit.register(shutil.rmtree, DB_DIR, True)

SECRET_KEY = "channels-unit-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.channels.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(DB_DIR, "db.sqlite3"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer",
        "CONFIG": {"blocking_timeout": 1.0},
        "ROUTING": [],
    },
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
