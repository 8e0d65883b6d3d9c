"""Django with the test settings, migrated once, and a fresh default layer per test."""

from __future__ import annotations

import pytest

from tests.support.django_env import migrate_once


@pytest.fixture(autouse=True, scope="session")
def _database():
    migrate_once()
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()
    yield
