"""Django set up once for the channels unit tests, with a fresh in-memory layer per test."""

from __future__ import annotations

import os

import django
import pytest
from django.conf import settings

if not settings.configured:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.channels.settings")
django.setup()


@pytest.fixture(scope="session")
def django_db():
    """Create the tables (auth, sessions) in the temporary SQLite database once."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    yield


@pytest.fixture
def layer():
    """A fresh in-memory layer (default routing) installed as the default layer."""
    from asgi_backends.inmemory import ChannelLayer
    from channels import channel_layers
    from channels.routing import Router

    fresh = ChannelLayer(blocking_timeout=1.0)
    fresh.alias = "default"
    fresh.router = Router([])
    with channel_layers.override("default", fresh):
        yield fresh


@pytest.fixture(autouse=True)
def _clean_caches():
    """Session data lives in the locmem cache; start every test empty."""
    from django.core.cache import cache

    cache.clear()
    yield
