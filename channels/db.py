"""``database_sync_to_async``: run ORM code from an async consumer, tidying database connections around it."""

from __future__ import annotations

from typing import Any, Callable

from asgiref.sync import SyncToAsync
from django.db import close_old_connections

__all__ = ["DatabaseSyncToAsync", "database_sync_to_async"]


class DatabaseSyncToAsync(SyncToAsync):
    """:class:`asgiref.sync.SyncToAsync` that closes stale database connections before and after the call."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()


def database_sync_to_async(func: Callable[..., Any] | None = None, thread_sensitive: bool = True) -> Any:
    """Wrap a synchronous function that uses the ORM so async code can ``await`` it (usable as a decorator)."""
    if func is None:
        return lambda f: DatabaseSyncToAsync(f, thread_sensitive=thread_sensitive)
    return DatabaseSyncToAsync(func, thread_sensitive=thread_sensitive)
