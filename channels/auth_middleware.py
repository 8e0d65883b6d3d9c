"""Channels 2-4 authentication: ``scope["user"]``, :func:`get_user`, :func:`login`, :func:`logout`.

``AuthMiddlewareStack(inner)`` is ``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``.
The user is the one logged in to the session; on a worker it is looked up
for each event (for a connection without a session cookie that is no query
at all: it is the anonymous user).
"""

from __future__ import annotations

from typing import Any, Callable

from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    load_backend,
    user_logged_in,
    user_logged_out,
)
from django.utils.crypto import constant_time_compare

from .db import database_sync_to_async
from .middleware import BaseMiddleware
from .routers import call_inner
from .session_middleware import CookieMiddleware, SessionMiddleware

__all__ = ["AuthMiddleware", "AuthMiddlewareStack", "get_user", "login", "logout"]


def AnonymousUser() -> Any:  # noqa: N802 - stands for the class, imported once apps are ready
    """Return Django's anonymous user (imported here: asgi.py imports this module before Django is set up)."""
    from django.contrib.auth.models import AnonymousUser as Anonymous

    return Anonymous()


def _session_of(scope: dict[str, Any]) -> Any:
    session = scope.get("session")
    if session is None:
        raise ValueError("No session in scope: authentication needs SessionMiddleware (use AuthMiddlewareStack)")
    return session


def _get_user(scope: dict[str, Any]) -> Any:
    from django.conf import settings

    session = _session_of(scope)
    user = None
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path in settings.AUTHENTICATION_BACKENDS:
        backend = load_backend(backend_path)
        user = backend.get_user(user_id)
        if user is not None and hasattr(user, "get_session_auth_hash"):
            session_hash = session.get(HASH_SESSION_KEY)
            if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
                session.flush()
                user = None
    return user or AnonymousUser()


async def get_user(scope: dict[str, Any]) -> Any:
    """Return the user logged in to the scope's session, or an ``AnonymousUser``.

    Raises:
        ValueError: the scope has no session.
    """
    return await database_sync_to_async(_get_user)(scope)


def _login(scope: dict[str, Any], user: Any, backend: str | None) -> None:
    from django.conf import settings
    from django.contrib.auth import _get_backends  # the backend list Django's own login() consults

    session = _session_of(scope)
    if user is None:
        user = scope.get("user")
    if user is None:
        raise ValueError("User must be passed as an argument or must be present in the scope")
    session_hash = user.get_session_auth_hash() if hasattr(user, "get_session_auth_hash") else ""
    if SESSION_KEY in session:
        if str(session[SESSION_KEY]) != str(user.pk) or (
                session_hash and not constant_time_compare(session.get(HASH_SESSION_KEY, ""), session_hash)):
            session.flush()
    else:
        session.cycle_key()
    if backend is None:
        backend = getattr(user, "backend", None)
    if backend is None:
        backends = _get_backends(return_tuples=True)
        if len(backends) != 1:
            raise ValueError("You have multiple authentication backends configured and therefore must provide "
                             "the `backend` argument")
        backend = backends[0][1]
    if backend not in settings.AUTHENTICATION_BACKENDS:
        raise ValueError(f"{backend!r} is not in settings.AUTHENTICATION_BACKENDS")
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = session_hash
    scope["user"] = user
    user_logged_in.send(sender=user.__class__, request=None, user=user)


async def login(scope: dict[str, Any], user: Any, backend: str | None = None) -> None:
    """Log ``user`` in to the scope's session (save it with ``scope["session"].save()`` afterwards).

    Raises:
        ValueError: no session, no user, or an ambiguous backend.
    """
    await database_sync_to_async(_login)(scope, user, backend)


def _logout(scope: dict[str, Any]) -> None:
    session = _session_of(scope)
    user = scope.get("user")
    if hasattr(user, "is_authenticated") and not user.is_authenticated:
        user = None
    if user is not None:
        user_logged_out.send(sender=user.__class__, request=None, user=user)
    session.flush()
    scope["user"] = AnonymousUser()


async def logout(scope: dict[str, Any]) -> None:
    """Log the scope's user out: flush the session and make ``scope["user"]`` anonymous."""
    await database_sync_to_async(_logout)(scope)


class AuthMiddleware(BaseMiddleware):
    """Put the session's user in ``scope["user"]`` (needs :class:`~channels.sessions.SessionMiddleware`)."""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        scope = dict(scope)
        session = _session_of(scope)
        if session.session_key is None:
            scope["user"] = AnonymousUser()  # no session cookie: nothing to look up
        else:
            scope["user"] = await get_user(scope)
        return await call_inner(self.inner, scope, receive, send)


def AuthMiddlewareStack(inner: Callable[..., Any]) -> CookieMiddleware:  # noqa: N802 - Channels' name
    """Return ``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
