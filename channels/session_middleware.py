"""Channels 2-4 cookie and session middleware: ``scope["cookies"]`` and ``scope["session"]``.

``SessionMiddlewareStack(inner)`` is ``CookieMiddleware(SessionMiddleware(inner))``.
The session is the one the browser's session cookie names, from
``SESSION_ENGINE``; it is loaded when first used and, as in Channels, saved
only when the consumer calls ``self.scope["session"].save()``. On a worker
it is made again for every event, so every worker sees the saved session.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module
from typing import Any, Callable

from django.conf import settings

from .middleware import BaseMiddleware
from .routers import call_inner

__all__ = ["CookieMiddleware", "SessionMiddleware", "SessionMiddlewareStack", "parse_cookies"]


def parse_cookies(header: str) -> dict[str, str]:
    """Return the cookies of a ``Cookie`` header (malformed parts are skipped)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        if "=" in chunk:
            key, value = chunk.split("=", 1)
        else:
            key, value = "", chunk
        key, value = key.strip(), value.strip()
        if key or value:
            if len(value) >= 2 and value[0] == value[-1] == '"':
                try:
                    parsed = SimpleCookie(f"x={value}")
                    value = parsed["x"].value
                except Exception:
                    value = value[1:-1]
            cookies[key] = value
    return cookies


class CookieMiddleware(BaseMiddleware):
    """Put the request's cookies in ``scope["cookies"]`` (a dict)."""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        cookie = b""
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookie = value
                break
        return await call_inner(self.inner, dict(scope, cookies=parse_cookies(cookie.decode("latin-1"))), receive, send)


class SessionMiddleware(BaseMiddleware):
    """Put the Django session named by the session cookie in ``scope["session"]`` (needs :class:`CookieMiddleware`).

    Raises:
        ValueError: no ``cookies`` in the scope.
    """

    def __init__(self, inner: Callable[..., Any]) -> None:
        super().__init__(inner)
        self._store: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        if "cookies" not in scope:
            raise ValueError("No cookies in scope - SessionMiddleware needs to run inside of CookieMiddleware "
                             "(use SessionMiddlewareStack)")
        store = self._store
        if store is None:
            store = self._store = import_module(settings.SESSION_ENGINE).SessionStore
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await call_inner(self.inner, dict(scope, session=store(session_key=key)), receive, send)


def SessionMiddlewareStack(inner: Callable[..., Any]) -> CookieMiddleware:  # noqa: N802 - Channels' name
    """Return ``CookieMiddleware(SessionMiddleware(inner))``."""
    return CookieMiddleware(SessionMiddleware(inner))
