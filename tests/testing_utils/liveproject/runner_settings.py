"""Settings for running :mod:`.runner_cases` under Django's own test runner (``python -m django test``).

``LIVE_RUNNER_DIR`` holds the databases. With ``LIVE_RUNNER_TEST_DB`` set,
the test database is that file; without it, Django's default for SQLite:
an in-memory test database, which ChannelLiveServerTestCase must refuse.
The settings' own database is never created: a child process that used it
instead of the test database would find no tables.
"""

import os

SECRET_KEY = "channels-live-runner-tests"
DEBUG = False
ALLOWED_HOSTS = []  # the live server's host is added for its children, as Django's LiveServerTestCase does
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "channels"]
ROOT_URLCONF = "tests.testing_utils.liveproject.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(os.environ["LIVE_RUNNER_DIR"], "never-created.sqlite3"),
        "TEST": {"NAME": os.environ.get("LIVE_RUNNER_TEST_DB")},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer",
        "ROUTING": "tests.testing_utils.liveproject.routing.channel_routing",
    },
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
