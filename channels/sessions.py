"""Sessions for consumers, and per-connection message ordering.

* :func:`channel_session` -- ``message.channel_session``, a Django session
  keyed by the message's reply channel: state that lives as long as the
  WebSocket (saved after the consumer returns, only if modified).
* :func:`http_session` -- ``message.http_session``, the visitor's ordinary
  Django session from the ``sessionid`` cookie or a ``session_key`` query
  parameter (``None`` if there is none).
* :func:`channel_and_http_session` -- both, with the HTTP session key
  remembered in the channel session for later messages.
* :func:`enforce_ordering` -- run a connection's messages in ``order``
  (see :mod:`channels.ordering`).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Callable

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.http import QueryDict, parse_cookie
from django.utils.crypto import salted_hmac

from . import settings as channel_settings
from .message import Message


#: Every channel session key starts with this. The ``;`` cannot occur in a
#: cookie value (it separates cookies), so a channel session's key can never
#: be presented as a ``sessionid`` cookie, and :func:`http_session` refuses
#: it as a ``session_key`` parameter: a channel session never works as an
#: HTTP session, even where both live in one session store.
CHANNEL_KEY_PREFIX = "chn;"


def session_key_for(reply_channel: str) -> str:
    """Return the session key of a reply channel's channel session (32 chars).

    The key is an HMAC of the name keyed with ``SECRET_KEY``, so knowing a
    reply channel's name (from a log line, say) does not give its session.
    """
    digest = salted_hmac("channels.sessions.channel_session", reply_channel, algorithm="sha256").hexdigest()
    return CHANNEL_KEY_PREFIX + digest[: 32 - len(CHANNEL_KEY_PREFIX)]


def legacy_session_key_for(reply_channel: str) -> str:
    """Return the key earlier versions used (an unkeyed SHA-1 of the name), read once to migrate."""
    return "chn" + hashlib.sha1(reply_channel.encode("utf-8")).hexdigest()[:29]


_LEGACY_LOOKED: dict[str, None] = {}
_LEGACY_LOOKED_MOST = 10000


def _first_legacy_look(reply_channel: str) -> bool:
    """True the first time this process looks for ``reply_channel``'s old-key session.

    A connection whose channel session stays empty would otherwise pay a
    second session read on every message; the old key cannot gain a session
    after the upgrade, so one look per connection and process is enough.
    """
    if reply_channel in _LEGACY_LOOKED:
        return False
    if len(_LEGACY_LOOKED) >= _LEGACY_LOOKED_MOST:
        _LEGACY_LOOKED.clear()  # bounded; forgetting only costs one more look
    _LEGACY_LOOKED[reply_channel] = None
    return True


def is_channel_session_key(key: str) -> bool:
    """True if ``key`` names a channel session (which must not be used as an HTTP session)."""
    return key.startswith(CHANNEL_KEY_PREFIX)


def session_for_reply_channel(reply_channel: str) -> SessionBase:
    """Return the (loaded) channel session for ``reply_channel``.

    A connection whose session was stored under the earlier, unkeyed key
    (before an upgrade) gets that session's data moved to the new key, so
    a rolling upgrade loses no session; ``CHANNELS_READ_LEGACY_SESSION_KEYS
    = False`` stops looking once no such session can be alive (one
    ``SESSION_COOKIE_AGE`` after the upgrade).

    Raises:
        ValueError: the session engine is signed cookies.
    """
    key = session_key_for(reply_channel)
    engine = channel_settings.channel_session_engine()
    store = engine.SessionStore(session_key=key)
    store._session  # noqa: B018 -- load now; backends forget the key when nothing is stored
    new = store._session_key is None
    store._channels_new = new  # type: ignore[attr-defined]
    store._session_key = key
    if new and channel_settings.read_legacy_session_keys() and _first_legacy_look(reply_channel):
        old = engine.SessionStore(session_key=legacy_session_key_for(reply_channel))
        data = old.load()
        if data:
            store.update(data)  # marks it modified: saved under the new key after the consumer
            old.delete()  # its key can be derived from a logged name: do not leave it readable
    return store


def save_channel_session(store: SessionBase) -> None:
    """Save a channel session, creating its row the first time."""
    if getattr(store, "_channels_new", False):
        try:
            store.save(must_create=True)
        except CreateError:  # another worker created it meanwhile
            store.save()
        store._channels_new = False  # type: ignore[attr-defined]
    else:
        try:
            store.save()
        except UpdateError:  # it expired or was deleted meanwhile
            store.save(must_create=True)
    store.modified = False


def find_message(args: tuple) -> Message:
    """Return the Message among a consumer's first two arguments (function or method)."""
    for arg in args[:2]:
        if isinstance(arg, Message):
            return arg
    raise ValueError(f"Session decorators need a Message as the first or second argument, got {args[:2]!r}")


def channel_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.channel_session``, saved afterwards if modified.

    After a ``websocket.disconnect`` consumer the session is deleted
    instead: nothing can use it any more, and left in place it would fill
    the session store for ``SESSION_COOKIE_AGE``.

    Raises (when called):
        ValueError: the message has no ``reply_channel``.
    """

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        if hasattr(message, "channel_session"):
            return func(*args, **kwargs)
        if message.reply_channel is None:
            raise ValueError(
                f"@channel_session needs a message with a reply_channel; the one on {message.channel.name} has none"
            )
        session = session_for_reply_channel(message.reply_channel.name)
        message.channel_session = session
        result = func(*args, **kwargs)
        if message.channel.name == "websocket.disconnect":
            # The connection is over and its reply channel never comes back:
            # kept, the session would only wait out SESSION_COOKIE_AGE.
            session.delete()
        elif session.modified:
            save_channel_session(session)
        return result

    return inner


def session_key_from_message(content: dict) -> str | None:
    """Return a session key from the ``session_key`` query parameter or the session cookie."""
    query = content.get("query_string")
    if query:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        key = QueryDict(query).get("session_key")
        if key:
            return key
    cookie_name = channel_settings.session_cookie_name()
    for name, value in content.get("headers", ()):
        if name in (b"cookie", "cookie"):
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            key = parse_cookie(value).get(cookie_name)
            if key:
                return key
    return None


def http_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.http_session`` (the visitor's Django session, or None).

    The session comes from the ``session_key`` query parameter or the
    session cookie of the message (``http.request`` or
    ``websocket.connect``); it is saved afterwards if modified. No new
    session is created: that is the job of views and ``SessionMiddleware``.
    """

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        if hasattr(message, "http_session"):
            return func(*args, **kwargs)
        key = session_key_from_message(message.content)
        if key and is_channel_session_key(key):
            key = None  # a channel session's key is never an HTTP session
        session = channel_settings.http_session_engine().SessionStore(session_key=key) if key else None
        message.http_session = session
        result = func(*args, **kwargs)
        if session is not None and session.modified:
            session.save()
        return result

    return inner


def channel_and_http_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give both sessions; the HTTP session's key is kept in the channel session.

    On the first message (``websocket.connect``) the key is remembered, so
    later messages of the connection, which carry no cookies, get the same
    ``http_session``.
    """

    @http_session
    @channel_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        cookie_name = channel_settings.session_cookie_name()
        if message.http_session is not None and cookie_name not in message.channel_session:
            message.channel_session[cookie_name] = message.http_session.session_key
        elif message.http_session is None and cookie_name in message.channel_session:
            engine = channel_settings.http_session_engine()
            message.http_session = engine.SessionStore(session_key=message.channel_session[cookie_name])
        return func(*args, **kwargs)

    return inner


from .ordering import enforce_ordering  # noqa: E402 -- ordering builds on channel_session
from .session_middleware import CookieMiddleware, SessionMiddleware, SessionMiddlewareStack  # noqa: E402

__all__ = [
    "CookieMiddleware",
    "SessionMiddleware",
    "SessionMiddlewareStack",
    "channel_and_http_session",
    "channel_session",
    "enforce_ordering",
    "http_session",
    "session_for_reply_channel",
]
