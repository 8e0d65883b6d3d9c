"""Django set up once for the channels unit tests, with a fresh in-memory layer per test."""

from __future__ import annotations

import pytest

from tests.support.django_env import migrate_once


@pytest.fixture(scope="session")
def django_db():
    """Create the tables (auth, sessions) in the temporary SQLite database once."""
    migrate_once()
    yield


@pytest.fixture
def layer():
    """A fresh in-memory layer (default routing) installed as the default layer, in its registry wrapper."""
    from asgi_backends.inmemory import ChannelLayer
    from channels import channel_layers
    from channels.asgi import ChannelLayerWrapper

    with channel_layers.override("default", ChannelLayerWrapper(ChannelLayer(blocking_timeout=1.0), "default", [])) as wrapper:
        yield wrapper


@pytest.fixture(autouse=True)
def _clean_caches():
    """Session data lives in the locmem cache; start every test empty."""
    from django.core.cache import cache

    cache.clear()
    yield
