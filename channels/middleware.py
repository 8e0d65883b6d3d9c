"""The base of Channels 2-4 ASGI middleware (:class:`BaseMiddleware`)."""

from __future__ import annotations

from typing import Any, Callable

from .routers import call_inner

__all__ = ["BaseMiddleware"]


class BaseMiddleware:
    """Wrap an inner application; subclasses change the scope and call ``super().__call__``.

    On a worker a middleware runs for every event of a connection (the scope
    is rebuilt for each), so what it adds is there for every handler.
    """

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        """Call the inner application with a copy of ``scope`` (so nothing leaks to outer ones)."""
        return await call_inner(self.inner, dict(scope), receive, send)
