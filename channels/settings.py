"""Channels' own settings, read once and cached (cleared when a test overrides settings).

* ``CHANNELS_WS_AUTO_ACCEPT`` (default ``True``): when a ``websocket.connect``
  consumer returns without accepting, rejecting or closing the socket, the
  worker accepts it, as Channels 0.x did. Set ``False`` for the strict 1.x
  behaviour, where such a handshake waits until something answers it.
* ``CHANNEL_SESSION_ENGINE`` (default ``SESSION_ENGINE``): the session
  backend behind ``channel_session``.
* ``CHANNELS_READ_LEGACY_SESSION_KEYS`` (default ``True``): a new
  connection's channel session is also looked up under the unkeyed key
  earlier versions used, and moved to the new key, so an upgrade loses no
  session. Set ``False`` once one ``SESSION_COOKIE_AGE`` has passed since
  the upgrade (no such session can be alive then) to save that lookup.
"""

from __future__ import annotations

import functools
from importlib import import_module
from types import ModuleType


@functools.cache
def ws_auto_accept() -> bool:
    """Return ``settings.CHANNELS_WS_AUTO_ACCEPT`` (default True)."""
    from django.conf import settings

    return bool(getattr(settings, "CHANNELS_WS_AUTO_ACCEPT", True))


@functools.cache
def channel_session_engine() -> ModuleType:
    """Return the session engine module used for channel sessions.

    Raises:
        ValueError: the engine is signed cookies, which cannot be written
            from a consumer.
    """
    from django.conf import settings

    path = getattr(settings, "CHANNEL_SESSION_ENGINE", None) or settings.SESSION_ENGINE
    if path == "django.contrib.sessions.backends.signed_cookies":
        raise ValueError(
            f"Channel sessions cannot use {path!r}: only HTTP responses can set cookies. "
            "Set CHANNEL_SESSION_ENGINE (or SESSION_ENGINE) to a database or cache backend."
        )
    return import_module(path)


@functools.cache
def read_legacy_session_keys() -> bool:
    """Return ``settings.CHANNELS_READ_LEGACY_SESSION_KEYS`` (default True)."""
    from django.conf import settings

    return bool(getattr(settings, "CHANNELS_READ_LEGACY_SESSION_KEYS", True))


@functools.cache
def http_session_engine() -> ModuleType:
    """Return ``settings.SESSION_ENGINE`` imported."""
    from django.conf import settings

    return import_module(settings.SESSION_ENGINE)


@functools.cache
def session_cookie_name() -> str:
    """Return ``settings.SESSION_COOKIE_NAME``."""
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


def clear_cache() -> None:
    """Forget cached values (settings changed)."""
    for function in (ws_auto_accept, channel_session_engine, http_session_engine, session_cookie_name,
                     read_legacy_session_keys):
        function.cache_clear()
