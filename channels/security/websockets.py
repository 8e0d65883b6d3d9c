"""Origin checks for WebSocket handshakes.

Browsers send an ``Origin`` header with every WebSocket handshake and, unlike
with ordinary requests, do not stop a page on another site from opening a
socket to yours with your visitor's cookies. Checking the origin closes that
hole::

    from channels.security.websockets import allowed_hosts_only

    @allowed_hosts_only
    def ws_connect(message):
        ...

    class Chat(WebsocketConsumer):
        @allowed_hosts_only
        def connect(self, message, **kwargs):
            ...

    @allowed_hosts_only                 # a whole class-based consumer
    class Feed(JsonWebsocketConsumer):
        ...

A handshake that fails the check is refused with HTTP 403 (the consumer
raises :class:`~channels.exceptions.DenyConnection`, which the worker turns
into a rejection); the wrapped code does not run. A handshake without an
``Origin`` header is refused too: every browser sends one.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.http.request import is_same_domain, validate_host

from ..exceptions import DenyConnection
from ..message import Message

logger = logging.getLogger(__name__)

CONNECT = "websocket.connect"


def origin_of(message: Message) -> str | None:
    """Return the handshake's ``Origin`` header as text, or None when absent."""
    for name, value in message.content.get("headers", ()):
        if name in (b"origin", "origin"):
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


class BaseOriginValidator:
    """Wraps a connect consumer (function, method or class) and refuses handshakes from bad origins.

    Subclasses implement :meth:`validate_origin`. Used as a decorator; on a
    class-based consumer it checks ``websocket.connect`` messages before the
    class dispatches them and lets every other message through.

    Raises (when called):
        ValueError: a wrapped function or method got a message that is not
            ``websocket.connect`` (the check only means something there).
        DenyConnection: the origin is missing or not allowed.
    """

    def __new__(cls, target: Any = None, **kwargs: Any) -> Any:
        if target is None and kwargs:  # @OriginValidator(allowed_origins=[...])
            return functools.partial(cls, **kwargs)
        if isinstance(target, type):
            return cls._wrap_class(target, **kwargs)
        return super().__new__(cls)

    def __init__(self, func: Any, **kwargs: Any) -> None:
        if not callable(func):
            raise TypeError(f"{type(self).__name__} decorates a consumer function, method or class, not {func!r}")
        functools.update_wrapper(self, func)
        self.func = func
        self.configure(**kwargs)

    def configure(self, **kwargs: Any) -> None:
        """Take the validator's options (none here; see :class:`OriginValidator`).

        Raises:
            TypeError: an unknown option was given.
        """
        if kwargs:
            raise TypeError(f"{type(self).__name__} takes no options, got {sorted(kwargs)!r}")

    @classmethod
    def _wrap_class(cls, consumer: type, **kwargs: Any) -> type:
        if not callable(getattr(consumer, "dispatch", None)):
            raise TypeError(f"{cls.__name__} can wrap a class-based consumer (with dispatch()), not {consumer!r}")
        validator = object.__new__(cls)  # only its check() is used
        validator.func = consumer
        validator.configure(**kwargs)

        def dispatch(self: Any, message: Message, **kwargs: Any) -> Any:
            if message.channel.name == CONNECT:
                validator.check(message)
            return consumer.dispatch(self, message, **kwargs)

        return type(consumer.__name__, (consumer,), {
            "dispatch": dispatch, "__module__": consumer.__module__, "__qualname__": consumer.__qualname__,
            "__doc__": consumer.__doc__,
        })

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        message = next((arg for arg in args[:2] if isinstance(arg, Message)), None)
        if message is None:
            raise ValueError(f"{type(self).__name__} needs a Message as the first or second argument, got {args[:2]!r}")
        if message.channel.name != CONNECT:
            raise ValueError(
                f"{type(self).__name__} only works on websocket.connect consumers; "
                f"{self.func!r} got a message on {message.channel.name!r}"
            )
        self.check(message)
        return self.func(*args, **kwargs)

    def check(self, message: Message) -> None:
        """Refuse the handshake unless its origin is valid.

        Raises:
            DenyConnection: no ``Origin`` header, or :meth:`validate_origin` said no.
        """
        origin = origin_of(message)
        if origin is None or not self.validate_origin(message, origin):
            logger.warning("Refused WebSocket handshake for %s from origin %r", message.content.get("path"), origin)
            raise DenyConnection(f"origin {origin!r} is not allowed")

    def validate_origin(self, message: Message, origin: str) -> bool:
        """Return True if ``origin`` (the header's value) may connect."""
        raise NotImplementedError(f"{type(self).__name__} must implement validate_origin(message, origin)")


class AllowedHostsOnlyOriginValidator(BaseOriginValidator):
    """Allow origins whose host is in ``settings.ALLOWED_HOSTS``.

    With ``DEBUG`` on and ``ALLOWED_HOSTS`` empty, ``localhost``,
    ``127.0.0.1`` and ``[::1]`` are allowed, as Django does for requests.
    """

    def validate_origin(self, message: Message, origin: str) -> bool:
        return origin_in_allowed_hosts(origin)


class OriginValidator(BaseOriginValidator):
    """Allow an explicit list of origins: ``OriginValidator(consumer, allowed_origins=[...])``.

    Entries are host patterns as in ``ALLOWED_HOSTS`` (``"example.com"``,
    ``".example.com"`` for subdomains, ``"*"``) or full origins
    (``"https://example.com:8443"``), which must match scheme, host and port.
    """

    def configure(self, allowed_origins: list[str] | None = None) -> None:  # type: ignore[override]
        """Take ``allowed_origins``, the list of origins or host patterns to allow.

        Raises:
            TypeError: ``allowed_origins`` is missing or not a list.
        """
        if allowed_origins is None or isinstance(allowed_origins, str):
            raise TypeError(f"OriginValidator needs allowed_origins=[...], a list, not {allowed_origins!r}")
        self.allowed_origins = list(allowed_origins)

    def validate_origin(self, message: Message, origin: str) -> bool:
        return origin_in_list(origin, self.allowed_origins)


def origin_in_allowed_hosts(origin: str) -> bool:
    """Return True if the host of ``origin`` is in ``settings.ALLOWED_HOSTS`` (with Django's DEBUG defaults)."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    try:
        parsed = urlparse(origin)
    except ValueError:
        return False
    try:
        hostname, port = parsed.hostname, parsed.port
    except ValueError:  # a port that is not a number
        return False
    if not hostname:
        return False
    if ":" in hostname:  # IPv6 literals are bracketed in ALLOWED_HOSTS
        hostname = f"[{hostname}]"
    candidates = [hostname] if port is None else [f"{hostname}:{port}", hostname]
    return any(validate_host(candidate, allowed) for candidate in candidates)


def origin_in_list(origin: str, allowed_origins: list[str]) -> bool:
    """Return True if ``origin`` matches an entry: a host pattern (``.example.com``, ``*``) or a full origin."""
    try:
        parsed = urlparse(origin)
        hostname = parsed.hostname
    except ValueError:
        return False
    for pattern in allowed_origins:
        if "://" in pattern:
            if origin.rstrip("/") == pattern.rstrip("/"):
                return True
        elif hostname and (pattern == "*" or is_same_domain(hostname, pattern)):
            return True
    return False


allowed_hosts_only = AllowedHostsOnlyOriginValidator

__all__ = ["AllowedHostsOnlyOriginValidator", "BaseOriginValidator", "OriginValidator", "allowed_hosts_only",
           "origin_in_allowed_hosts", "origin_in_list"]
