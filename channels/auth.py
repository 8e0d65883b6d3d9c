"""Django users for consumers.

* :func:`http_session_user` -- ``message.user`` from the HTTP session.
* :func:`channel_session_user` -- ``message.user`` from the channel session.
* :func:`channel_session_user_from_http` -- on ``websocket.connect``: copy
  the logged-in user from the HTTP session into the channel session, and
  set ``message.user``.
* :func:`transfer_user` -- copy the login from one session to another.

``message.user`` is an ``AnonymousUser`` when nobody is logged in.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from django.contrib import auth

from .sessions import channel_and_http_session, channel_session, find_message, http_session

_LOGIN_KEYS = (auth.BACKEND_SESSION_KEY, auth.SESSION_KEY, auth.HASH_SESSION_KEY)


class _SessionHolder:
    """The one attribute of a request ``auth.get_user`` reads."""

    __slots__ = ("session",)

    def __init__(self, session: Any) -> None:
        self.session = session


def user_from_session(session: Any) -> Any:
    """Return the user logged in to ``session``, or ``AnonymousUser``."""
    if session is None:
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return auth.get_user(_SessionHolder(session))


def transfer_user(from_session: Any, to_session: Any) -> None:
    """Copy the login (backend, user id, hash) from ``from_session`` to ``to_session``."""
    if all(key in from_session for key in _LOGIN_KEYS):
        for key in _LOGIN_KEYS:
            to_session[key] = from_session[key]


def channel_session_user(func: Callable[..., Any]) -> Callable[..., Any]:
    """Set ``message.user`` from the channel session (implies ``channel_session``)."""

    @channel_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        message.user = user_from_session(message.channel_session)
        return func(*args, **kwargs)

    return inner


def http_session_user(func: Callable[..., Any]) -> Callable[..., Any]:
    """Set ``message.http_session`` and ``message.user`` (AnonymousUser without a session)."""

    @http_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        message.user = user_from_session(message.http_session)
        return func(*args, **kwargs)

    return inner


def _user_from_http(func: Callable[..., Any], session_decorator: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func`` so the HTTP login is copied into the channel session first."""

    @http_session_user
    @session_decorator
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        if message.http_session is not None:
            transfer_user(message.http_session, message.channel_session)
        return func(*args, **kwargs)

    return inner


def channel_session_user_from_http(func: Callable[..., Any]) -> Callable[..., Any]:
    """For ``websocket.connect``: copy the HTTP login into the channel session, set ``message.user``."""
    return _user_from_http(func, channel_session)


def channel_and_http_session_user_from_http(func: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`channel_session_user_from_http`, keeping ``http_session`` for later messages."""
    return _user_from_http(func, channel_and_http_session)


# The Channels 2-4 middleware and helpers (their own module; this is where Channels imports them from).
from .auth_middleware import AuthMiddleware, AuthMiddlewareStack, get_user, login, logout  # noqa: E402

__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "channel_and_http_session_user_from_http",
    "channel_session_user",
    "channel_session_user_from_http",
    "get_user",
    "http_session_user",
    "login",
    "logout",
    "transfer_user",
]
