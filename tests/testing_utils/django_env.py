"""Set Django up for this area's in-process tests (imported by their conftest files)."""

from __future__ import annotations

import os

import django
from django.conf import settings

REQUIRED_APPS = ("channels", "channels.delay", "tests.binding")

if not settings.configured:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testing_utils.settings")
django.setup()

_missing = [app for app in REQUIRED_APPS if app not in settings.INSTALLED_APPS]
if _missing:
    raise RuntimeError(
        f"Django was configured with {os.environ.get('DJANGO_SETTINGS_MODULE')!r}, which lacks {_missing}; "
        "these tests need tests.testing_utils.settings (a superset of tests.channels.settings). "
        "Run them in a separate pytest invocation or list their directories first."
    )

_migrated = False


def migrate_once() -> None:
    """Create every installed app's tables in the test database (once per process)."""
    global _migrated
    if not _migrated:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
        _migrated = True
