"""Django settings for the in-process tests of generic consumers, test utilities, security, binding and delay.

A superset of ``tests.channels.settings`` (whichever of the two a pytest
run configures first serves both): the same in-memory layer, cache
sessions and temporary database, plus the delay app and the binding tests'
model app.
"""

from tests.channels.settings import *  # noqa: F401,F403
from tests.channels.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "channels.delay", "tests.binding"]
# Fast hashing: the tests create and log in users, and PBKDF2 costs seconds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
