"""Channels 2-4 origin checks as ASGI middleware: :class:`OriginValidator`, :func:`AllowedHostsOriginValidator`.

A WebSocket handshake whose ``Origin`` fails the check is refused (HTTP
403) before the inner application sees it; one without an ``Origin``
header is refused too, unless ``"*"`` is allowed.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from .websockets import origin_in_allowed_hosts, origin_in_list

logger = logging.getLogger(__name__)

__all__ = ["AllowedHostsOriginValidator", "OriginValidator", "WebsocketDenier"]


def _origin(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return value.decode("latin-1")
    return None


class OriginValidator:
    """Let through WebSocket connections whose origin is allowed; refuse the others.

    Args:
        application: the inner application.
        allowed_origins: host patterns as in ``ALLOWED_HOSTS`` (``"example.com"``,
            ``".example.com"``, ``"*"``) or full origins (``"https://example.com:8443"``).
    """

    def __init__(self, application: Callable[..., Any], allowed_origins: list[str]) -> None:
        if isinstance(allowed_origins, str) or not isinstance(allowed_origins, (list, tuple)):
            raise TypeError(f"allowed_origins must be a list of origins or host patterns, not {allowed_origins!r}")
        self.application = application
        self.allowed_origins = list(allowed_origins)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        """Run the inner application, or refuse the connection."""
        if scope["type"] == "websocket":
            origin = _origin(scope)
            if not self.valid_origin(origin):
                logger.info("Refusing a WebSocket to %s from origin %r", scope.get("path"), origin)
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

    def valid_origin(self, origin: str | None) -> bool:
        """Return True if ``origin`` (None when the header is missing) may connect."""
        if origin is None:
            return "*" in self.allowed_origins
        return origin_in_list(origin, self.allowed_origins)


class _AllowedHostsValidator(OriginValidator):
    def valid_origin(self, origin: str | None) -> bool:
        return origin is not None and origin_in_allowed_hosts(origin)


def AllowedHostsOriginValidator(application: Callable[..., Any]) -> OriginValidator:  # noqa: N802 - Channels' name
    """Return an :class:`OriginValidator` that allows the hosts in ``settings.ALLOWED_HOSTS``."""
    return _AllowedHostsValidator(application, [])


class WebsocketDenier:
    """An application that refuses every WebSocket handshake (and closes anything else)."""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Answer the event with a close (a refusal before the handshake is accepted)."""
        await receive()
        await send({"type": "websocket.close"})
