"""Static files for ``runserver``: ``http.request`` under ``STATIC_URL`` served by staticfiles.

:class:`StaticFilesRouter` wraps the project's router; requests for static
files are answered by ``django.contrib.staticfiles``' finders, everything
else is routed as usual.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.http import Http404, HttpResponseNotFound

from .handler import AsgiHandler, AsgiRequest


def serve_static(message: Any, **kwargs: Any) -> None:
    """Answer an ``http.request`` for a static file (404 if no finder has it)."""
    from django.contrib.staticfiles.views import serve

    prefix = urlparse(settings.STATIC_URL).path
    request = AsgiRequest(message)
    try:
        response = serve(request, request.path[len(prefix):], insecure=True)
    except Http404 as exc:
        response = HttpResponseNotFound(str(exc))
    try:
        for chunk in AsgiHandler.encode_response(response):
            message.reply_channel.send(chunk, immediately=True)
    finally:
        response.close()


class StaticFilesRouter:
    """A router answering static-file requests itself and delegating the rest.

    Args:
        router: the project's router.
    """

    def __init__(self, router: Any) -> None:
        self.router = router
        self.prefix = urlparse(settings.STATIC_URL or "/static/").path
        self.channels = set(router.channels) | {"http.request"}

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None:
        """Return the static consumer for static paths, else the wrapped router's match."""
        if message.channel.name == "http.request":
            path = message.content.get("path", "")
            if isinstance(path, str) and path.startswith(self.prefix) and message.content.get("method") in ("GET", "HEAD"):
                return serve_static, {}
        return self.router.match(message)
