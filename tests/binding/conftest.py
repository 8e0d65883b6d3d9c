"""Django with the test settings, migrated once, and an empty cache per test."""

from tests.support.django_env import django_clean_cache, django_database  # noqa: F401  (autouse fixtures)
