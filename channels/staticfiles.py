"""Static files served by the workers, for development (``DEBUG = True``).

``manage.py runserver`` and ``manage.py runworker`` serve ``STATIC_URL``
through the workers when ``DEBUG`` is on and ``django.contrib.staticfiles``
is installed, as Django's own ``runserver`` does, so a page served through
the interface server gets its JavaScript without a separate web server.

* :class:`StaticFilesHandler` -- an :class:`~channels.handler.AsgiHandler`
  answering paths under ``STATIC_URL`` from the staticfiles finders and
  handing every other request to Django.
* :class:`StaticFilesConsumer` -- the ``http.request`` consumer using it
  (Channels 1.x's name, for projects that route it themselves).
* :class:`StaticFilesRouter` -- wraps a project's router so static paths
  reach the static consumer before any other route; the commands use it.

In production, serve static files with a web server or a CDN instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from django.conf import settings
from django.contrib.staticfiles import utils
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpRequest, HttpResponseBase, HttpResponseNotFound

from .handler import AsgiHandler, ViewConsumer

STATIC_METHODS = ("GET", "HEAD")


def static_prefix() -> str | None:
    """Return the path part of ``STATIC_URL``, or None when static files live on another host.

    Raises:
        ImproperlyConfigured: ``STATIC_URL`` is not set (from Django's own check).
    """
    utils.check_settings()
    parsed = urlparse(settings.STATIC_URL)
    return None if parsed.netloc else parsed.path


class StaticFilesHandler(AsgiHandler):
    """An :class:`~channels.handler.AsgiHandler` that answers requests under ``STATIC_URL`` itself.

    A static path is looked up with the staticfiles finders (``404`` when
    none has it: Django's technical 404 page with ``DEBUG``); any other
    request goes through Django's middleware and views as usual.
    """

    def __init__(self) -> None:
        super().__init__()
        self.prefix = static_prefix()

    def should_handle(self, path: str) -> bool:
        """Return True if ``path`` is under ``STATIC_URL`` (and ``STATIC_URL`` names no host)."""
        return self.prefix is not None and path.startswith(self.prefix)

    def file_path(self, url: str) -> str:
        """Return the path, relative to the static roots, that ``url`` asks for."""
        return url2pathname(url[len(self.prefix or ""):])

    def serve(self, request: HttpRequest) -> HttpResponseBase:
        """Return the static file ``request`` asks for.

        Raises:
            Http404: no finder has it.
        """
        from django.contrib.staticfiles.views import serve

        return serve(request, self.file_path(request.path), insecure=True)

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        if not self.should_handle(request.path):
            return super().get_response(request)
        try:
            return self.serve(request)
        except SuspiciousFileOperation:
            # "../" out of the static roots: a client's doing, so a 404, not a 500 and a traceback.
            return HttpResponseNotFound("Not found")
        except Http404 as exc:
            if settings.DEBUG:
                from django.views import debug

                return debug.technical_404_response(request, exc)
            return HttpResponseNotFound(str(exc))


class StaticFilesConsumer(ViewConsumer):
    """The ``http.request`` consumer that serves static files, then Django views.

    Route it in place of the default (``route("http.request",
    StaticFilesConsumer())``) or let ``runserver``/``runworker`` add it
    when ``DEBUG`` is on.
    """

    handler_class = StaticFilesHandler


class StaticFilesRouter:
    """A router answering static-file requests itself and delegating the rest.

    ``GET`` and ``HEAD`` requests under ``STATIC_URL`` go to one shared
    :class:`StaticFilesConsumer` (built on first use); everything else is
    matched by the wrapped router.

    Args:
        router: the project's router.
    """

    def __init__(self, router: Any) -> None:
        self.router = router
        self.prefix = static_prefix()
        self.channels = set(router.channels) | {"http.request"}
        self.ordered_channels = set(router.ordered_channels)
        self._consumer: StaticFilesConsumer | None = None

    def consumer(self) -> StaticFilesConsumer:
        """Return the static-files consumer, building it on first use."""
        if self._consumer is None:
            self._consumer = StaticFilesConsumer()
        return self._consumer

    def match(self, message: Any) -> tuple[Any, dict[str, Any]] | None:
        """Return the static consumer for static paths, else the wrapped router's match."""
        if self.prefix is not None and message.channel.name == "http.request":
            content = message.content
            path = content.get("path", "")
            if isinstance(path, str) and path.startswith(self.prefix) and content.get("method") in STATIC_METHODS:
                return self.consumer(), {}
        return self.router.match(message)


def should_serve_static(insecure: bool = False) -> bool:
    """True when the commands should serve static files: staticfiles installed and ``DEBUG`` (or ``insecure``)."""
    from django.apps import apps

    return apps.is_installed("django.contrib.staticfiles") and (settings.DEBUG or insecure)


__all__ = ["StaticFilesConsumer", "StaticFilesHandler", "StaticFilesRouter", "should_serve_static", "static_prefix"]
