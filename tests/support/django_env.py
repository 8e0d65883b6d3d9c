"""Set Django up once for every in-process Django test (imported by their conftest files)."""

from __future__ import annotations

import importlib
import os

import django
import pytest
from django.conf import settings

REQUIRED_APPS = ("channels", "channels.delay", "tests.binding")
SETTINGS_MODULE = "tests.testing_utils.settings"

if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
    # configure() rather than DJANGO_SETTINGS_MODULE: subprocesses the tests
    # start (other projects' manage.py) must not inherit this process's settings.
    _module = importlib.import_module(SETTINGS_MODULE)
    settings.configure(**{name: getattr(_module, name) for name in dir(_module) if name.isupper()})
django.setup()

_missing = [app for app in REQUIRED_APPS if app not in settings.INSTALLED_APPS]
if _missing:
    raise RuntimeError(
        f"Django was configured with {os.environ.get('DJANGO_SETTINGS_MODULE')!r}, which lacks {_missing}; "
        f"these tests need {SETTINGS_MODULE} (a superset of tests.channels.settings). "
        "Unset DJANGO_SETTINGS_MODULE before running the suite."
    )

_migrated = False


def migrate_once() -> None:
    """Create every installed app's tables in the test database (once per process)."""
    global _migrated
    if not _migrated:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
        _migrated = True


@pytest.fixture(autouse=True, scope="session")
def django_database():
    """Autouse fixture for in-process Django test folders: tables created once."""
    migrate_once()
    yield


@pytest.fixture(autouse=True)
def django_clean_cache():
    """Autouse fixture: sessions live in the locmem cache, so every test starts empty."""
    from django.core.cache import cache

    cache.clear()
    yield
