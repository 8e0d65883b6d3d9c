"""``ChannelLiveServerTestCase``: a live interface server and worker, in their own processes, per test.

As in Channels 1.x, for tests that drive the site from outside (a browser
through Selenium, ``urllib``, a WebSocket client)::

    from channels.test.liveserver import ChannelLiveServerTestCase

    class ChatTests(ChannelLiveServerTestCase):
        def test_lobby(self):
            Room.objects.create(name="lobby")
            page = urllib.request.urlopen(self.live_server_url + "/room/lobby/").read()
            socket = websocket.create_connection(self.live_server_ws_url + "/chat/lobby/")
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import TransactionTestCase

from ..asgi import DEFAULT_CHANNEL_LAYER, ChannelLayerWrapper, build_layer, channel_layers
from .liveprocess import InterfaceServerProcess, LiveProcess, LiveSpec, WorkerProcess

logger = logging.getLogger(__name__)

__all__ = ["ChannelLiveServerTestCase", "LiveServerRun"]

#: The same-machine layer put in for a layer that cannot cross processes.
SAME_MACHINE_BACKEND = "asgi_backends.sqlite.SQLiteChannelLayer"
#: CONFIG options of an in-memory layer the same-machine layer takes over as they are.
CARRIED_OPTIONS = ("expiry", "group_expiry", "capacity", "channel_capacity", "blocking_timeout")

# Django 5.2 made TransactionTestCase._pre_setup a classmethod, run from
# setUpClass for a class's first test; before, it was a method of each test.
_CLASS_LEVEL_PRE_SETUP = isinstance(inspect.getattr_static(TransactionTestCase, "_pre_setup"), classmethod)


class LiveServerRun:
    """The live interface server and worker of one test: started, then stopped.

    Args:
        case: the test case class (or instance) whose attributes
            (``host``, ``worker_threads``, …) say what to start.

    Attributes:
        port: the interface server's port, once :meth:`start` returned.
    """

    def __init__(self, case: Any) -> None:
        self.case = case
        self.alias = DEFAULT_CHANNEL_LAYER
        self.port: int | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="channels-live-"))
        self.processes: list[LiveProcess] = []
        # (the wrapper the registry held before, the same-machine one put in its place)
        self._replaced: tuple[ChannelLayerWrapper | None, ChannelLayerWrapper] | None = None

    def start(self, settings_module: str) -> None:
        """Prepare the layer, start both children and wait until they are ready.

        On failure everything started is stopped again before the exception propagates.

        Raises:
            channels.test.liveprocess.LiveProcessError: a child died or was not ready in time.
            TypeError: the test's settings overrides cannot be pickled.
        """
        case = self.case
        try:
            spec = LiveSpec(
                settings_module=settings_module,
                databases={alias: connections[alias].settings_dict["NAME"] for alias in connections},
                alias=self.alias,
                layer=self._prepare_layer(),
                host=case.host,
                worker_threads=case.worker_threads,
                serve_static=case.serve_static,
                overridden_settings=case._overridden_settings,
                modified_settings=case._modified_settings,
            )
            spec_path = self.directory / "spec.pickle"
            spec.write(spec_path)
            env = child_environment()
            server = case.ProtocolServerProcess(spec_path, env)
            worker = case.WorkerProcess(spec_path, env)
            # Both start at once (each spends most of its start-up importing Django), then both are awaited.
            for process in (server, worker):
                process.start()
                self.processes.append(process)
            server.wait_ready(case.startup_timeout)
            worker.wait_ready(case.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.port = server.port
        logger.debug("Live server on port %s (pids %s, %s)", self.port, server.pid, worker.pid)

    def stop(self) -> None:
        """Stop the children (by PID, SIGKILL after ``stop_timeout``), restore the layer, remove the files."""
        try:
            for process in self.processes:
                process.stop(self.case.stop_timeout)
        finally:
            self.processes = []
            self.port = None
            if self._replaced is not None:
                previous, replacement = self._replaced
                channel_layers.set(self.alias, previous)
                replacement.channel_layer.close()
                self._replaced = None
            shutil.rmtree(self.directory, ignore_errors=True)

    def _prepare_layer(self) -> dict[str, Any] | None:
        """Flush a cross-process layer; put a same-machine layer in for any other.

        Returns:
            ``{"BACKEND": …, "CONFIG": …}`` the children must use instead of
            the configured backend, or ``None`` to use it as configured.
        """
        configured = channel_layers.configs.get(self.alias)
        if configured is not None:
            layer = channel_layers[self.alias]
            if layer.cross_process:
                if "flush" in layer.extensions:
                    layer.flush()
                return None
        options = (configured or {}).get("CONFIG") or {}
        config = {name: options[name] for name in CARRIED_OPTIONS if name in options}
        config["path"] = str(self.directory / "layer")
        replacement = build_layer(self.alias, SAME_MACHINE_BACKEND, config, (configured or {}).get("ROUTING", []))
        self._replaced = (channel_layers.set(self.alias, replacement), replacement)
        return {"BACKEND": SAME_MACHINE_BACKEND, "CONFIG": config}


class ChannelLiveServerTestCase(TransactionTestCase):
    """A ``TransactionTestCase`` with a live interface server and worker for every test.

    Before each test an interface server (listening on :attr:`host`, on a
    free port) and a worker running the project's routing are started as
    separate processes of this interpreter, against the test database, and
    the test waits until both report ready; they are stopped after it.
    ``live_server_url`` and ``live_server_ws_url`` say where to connect.

    The children set Django up from :attr:`settings_module` with this test's
    database names (those the test runner created) and the class's
    ``override_settings`` / ``modify_settings`` (not a test method's: the
    children start before the method runs). Overridden values are pickled
    to reach them.

    The channel layer is the configured ``default`` one when it crosses
    processes (Redis, the same-machine SQLite layer); it is flushed first.
    The in-memory layer cannot reach another process, so for it (and when
    ``CHANNEL_LAYERS`` is not set) the server, the worker *and this test
    process* use a same-machine :class:`~asgi_backends.sqlite.SQLiteChannelLayer`
    in a temporary directory instead, with the configured routing: a
    ``Group(...).send()`` in the test reaches the live server's clients.

    Attributes:
        host: the interface to listen on and the host of the URLs.
        worker_threads: consumer threads of the worker.
        serve_static: the worker serves ``STATIC_URL`` from the staticfiles
            finders when ``django.contrib.staticfiles`` is installed.
        ProtocolServerProcess, WorkerProcess: the
            :class:`~channels.test.liveprocess.LiveProcess` classes started.
        settings_module: the settings module of the children; ``None``
            means the one this process was set up with
            (``DJANGO_SETTINGS_MODULE``). Set it when the settings were made
            with ``settings.configure()``.
        startup_timeout: seconds to wait for the children to be ready.
        stop_timeout: seconds each child gets to stop before it is killed.

    Raises (from ``_pre_setup``, so the test errors):
        ImproperlyConfigured: a database is an in-memory SQLite database,
            more than one channel layer is configured, or there is no
            settings module to give the children.
        channels.test.liveprocess.LiveProcessError: a child died or did not
            report ready in time.
    """

    host = "localhost"
    ProtocolServerProcess: type[LiveProcess] = InterfaceServerProcess
    WorkerProcess: type[LiveProcess] = WorkerProcess
    worker_threads = 1
    serve_static = True
    settings_module: str | None = None
    startup_timeout = 30.0
    stop_timeout = 10.0
    _live: LiveServerRun | None = None

    @property
    def live_server_url(self) -> str:
        """``http://host:port`` of the live interface server.

        Raises:
            RuntimeError: outside a test (the server runs only during one).
        """
        return f"http://{self.host}:{self._live_port()}"

    @property
    def live_server_ws_url(self) -> str:
        """``ws://host:port`` of the live interface server (see :attr:`live_server_url`)."""
        return f"ws://{self.host}:{self._live_port()}"

    def _live_port(self) -> int:
        if self._live is None or self._live.port is None:
            raise RuntimeError("The live server runs only while a test runs (between _pre_setup and _post_teardown)")
        return self._live.port

    def _start_live_server(owner: Any) -> None:  # noqa: N805 -- the class (Django >= 5.2) or the test
        for connection in connections.all():
            if owner._is_in_memory_db(connection):
                raise ImproperlyConfigured(
                    f"ChannelLiveServerTestCase cannot be used with in-memory databases: {connection.alias!r} "
                    "lives in this process only, where the worker process cannot see it. Give its test "
                    f"database a file: DATABASES[{connection.alias!r}]['TEST'] = {{'NAME': 'test_db.sqlite3'}}"
                )
        if len(channel_layers.configs) > 1:
            raise ImproperlyConfigured(
                "ChannelLiveServerTestCase does not support multiple CHANNEL_LAYERS "
                f"(configured: {', '.join(sorted(channel_layers.configs))}); keep only 'default' in the test settings"
            )
        settings_module = owner.settings_module or settings.SETTINGS_MODULE
        if not settings_module:
            raise ImproperlyConfigured(
                "ChannelLiveServerTestCase starts its server and worker with a settings module, and this process "
                "has none (settings.configure() was used): set settings_module on the test class"
            )
        run = LiveServerRun(owner)
        run.start(settings_module)
        owner._live = run
        try:
            # Fixtures after the children: they read the database per request, not at start-up.
            super(ChannelLiveServerTestCase, owner)._pre_setup()
        except BaseException:
            owner._live = None
            run.stop()
            raise

    _pre_setup = classmethod(_start_live_server) if _CLASS_LEVEL_PRE_SETUP else _start_live_server

    def _post_teardown(self) -> None:
        run = self._live
        (type(self) if _CLASS_LEVEL_PRE_SETUP else self)._live = None
        try:
            # Children first: they hold connections to the database the flush below empties.
            if run is not None:
                run.stop()
        finally:
            super()._post_teardown()

    @staticmethod
    def _is_in_memory_db(connection: Any) -> bool:
        """Return True if ``connection`` is an in-memory SQLite database."""
        return connection.vendor == "sqlite" and connection.is_in_memory_db()


def child_environment() -> dict[str, str]:
    """Return the children's environment: this one, with this process's ``sys.path`` as ``PYTHONPATH``.

    The children then import the same modules (a test runner may have put the
    project's directory on ``sys.path`` without it being installed).
    """
    paths = [os.path.abspath(entry) for entry in sys.path if entry and os.path.exists(entry)]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
