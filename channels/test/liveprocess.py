"""The processes behind :class:`~channels.test.liveserver.ChannelLiveServerTestCase`.

Two halves in one module, so the parent and its children agree on one
protocol:

* **In the test process**, :class:`InterfaceServerProcess` and
  :class:`WorkerProcess` start ``python -m channels.test.liveprocess
  server|worker SPEC READY_FD`` with this interpreter, wait until the child
  reports it is ready, and stop it by its PID.
* **In the child**, :func:`main` reads the :class:`LiveSpec` the test
  process wrote, sets Django up as the test process has it (settings module,
  test database names, the test class's ``override_settings`` /
  ``modify_settings``, the channel layer) and runs an interface server or a
  worker.

Readiness is reported on a pipe the child inherits (``READY_FD``): one line,
``ready`` (a worker, from its ``worker_ready`` signal) or ``ready PORT`` (an
interface server, from its ``on_ready`` callback, with the port it bound).
End of file without that line means the child died; the test process then
raises :class:`LiveProcessError` at once instead of waiting out a timeout.
The child's stdin is a pipe the test process holds open: should the test
process die without stopping it, the child sees end of file and stops too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

__all__ = ["InterfaceServerProcess", "LiveProcess", "LiveProcessError", "LiveSpec", "WorkerProcess", "main"]


class LiveProcessError(RuntimeError):
    """A live server child process died, or did not report ready in time."""


@dataclasses.dataclass(frozen=True)
class LiveSpec:
    """What a child needs to mirror the test process's Django.

    Attributes:
        settings_module: the settings module the child sets Django up with.
        databases: ``{alias: NAME}`` of the test databases the test process
            uses (the test runner's ``test_…`` names, not the settings' own).
        alias: the channel layer alias served.
        layer: ``{"BACKEND": …, "CONFIG": …}`` replacing that alias's
            configured backend (its ROUTING is kept), or ``None`` to use it
            as configured.
        host: the interface the server listens on (port 0: any free port).
        worker_threads: consumer threads of the worker.
        serve_static: the worker answers ``STATIC_URL`` requests from the
            staticfiles finders (when ``django.contrib.staticfiles`` is installed).
        overridden_settings: the test class's ``override_settings``.
        modified_settings: the test class's ``modify_settings`` operations.
    """

    settings_module: str
    databases: dict[str, str]
    alias: str
    layer: dict[str, Any] | None
    host: str
    worker_threads: int = 1
    serve_static: bool = True
    overridden_settings: dict[str, Any] | None = None
    modified_settings: list[Any] | None = None

    def write(self, path: Path) -> None:
        """Pickle the spec to ``path``: settings values may be any Python object, as fork gave 1.x.

        Raises:
            TypeError: a settings value cannot be pickled (named in the message).
        """
        try:
            data = pickle.dumps(self)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"The live server processes need the test's settings overrides pickled, "
                            f"and one cannot be: {exc}") from exc
        path.write_bytes(data)

    @classmethod
    def read(cls, path: Path) -> LiveSpec:
        """Return the spec the test process wrote to ``path`` (a private file of its own)."""
        spec = pickle.loads(path.read_bytes())
        if not isinstance(spec, cls):
            raise TypeError(f"{path} holds {type(spec).__name__}, not a LiveSpec")
        return spec


# -- the test process's side -----------------------------------------------------------------


class LiveProcess:
    """One child process: started with this interpreter, awaited until ready, stopped by PID.

    Args:
        spec_path: the pickled :class:`LiveSpec`.
        env: the child's environment (``DJANGO_SETTINGS_MODULE``, ``PYTHONPATH``).
        cwd: the child's working directory.

    Subclasses set :attr:`role` (the child's entry point in :func:`main`).
    """

    role = ""
    #: How the role is named in error messages.
    description = "live process"

    def __init__(self, spec_path: Path, env: dict[str, str], cwd: str | None = None) -> None:
        self.spec_path = spec_path
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self._ready_fd: int | None = None

    @property
    def pid(self) -> int | None:
        """The child's PID (None before :meth:`start`)."""
        return None if self.popen is None else self.popen.pid

    def command(self, ready_fd: int) -> list[str]:
        """Return the child's argv."""
        return [sys.executable, "-m", "channels.test.liveprocess", self.role, str(self.spec_path), str(ready_fd)]

    def start(self) -> None:
        """Start the child; return at once (see :meth:`wait_ready`)."""
        read_fd, write_fd = os.pipe()
        try:
            # stdout/stderr are inherited: a test runner that captures output shows the child's with a failure.
            self.popen = subprocess.Popen(self.command(write_fd), env=self.env, cwd=self.cwd,
                                          stdin=subprocess.PIPE, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child holds the only write end now: its exit means end of file
        self._ready_fd = read_fd
        logger.debug("Started the %s (pid %s)", self.description, self.popen.pid)

    def wait_ready(self, timeout: float) -> list[str]:
        """Block until the child reports ready; return the words after ``ready``.

        Raises:
            LiveProcessError: the child exited (or closed the pipe) first, or
                ``timeout`` seconds passed.
        """
        if self.popen is None or self._ready_fd is None:
            raise RuntimeError(f"the {self.description} was not started")
        deadline = time.monotonic() + timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._ready_fd, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LiveProcessError(f"The {self.description} (pid {self.pid}) did not report ready within "
                                           f"{timeout:g}s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(self._ready_fd, 1024)
                if not chunk:
                    raise LiveProcessError(self._died_message())
                received += chunk
        line = received.split(b"\n", 1)[0].decode("ascii", "replace").split()
        if not line or line[0] != "ready":
            raise LiveProcessError(f"The {self.description} (pid {self.pid}) reported {received!r}, not 'ready'")
        return line[1:]

    def _died_message(self) -> str:
        try:
            status = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return f"The {self.description} (pid {self.pid}) closed its readiness pipe without reporting ready"
        return (f"The {self.description} (pid {self.pid}) exited with status {status} before it was ready; "
                "its traceback is in this process's stderr output")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the child by its PID, wait up to ``timeout`` seconds, SIGKILL if it lingers.

        Returns:
            The child's exit status (None if it was never started).
        """
        if self.popen is None:
            return None
        try:
            if self.popen.poll() is None:
                self.popen.terminate()  # a graceful stop: the message or response in hand finishes
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("The %s (pid %s) did not stop within %gs; killing it",
                                   self.description, self.pid, timeout)
                    self.popen.kill()
                    self.popen.wait()
                else:
                    if self.popen.returncode != 0:
                        logger.warning("The %s (pid %s) exited with status %s when stopped",
                                       self.description, self.pid, self.popen.returncode)
        finally:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
            if self._ready_fd is not None:
                os.close(self._ready_fd)
                self._ready_fd = None
        return self.popen.returncode


class InterfaceServerProcess(LiveProcess):
    """The interface server child. :attr:`port` is the TCP port it bound, once ready."""

    role = "server"
    description = "live interface server"
    port: int | None = None

    def wait_ready(self, timeout: float) -> list[str]:
        """As :meth:`LiveProcess.wait_ready`; also sets :attr:`port`."""
        words = super().wait_ready(timeout)
        if len(words) != 1 or not words[0].isdigit():
            raise LiveProcessError(f"The {self.description} (pid {self.pid}) reported ready without a port: {words!r}")
        self.port = int(words[0])
        return words


class WorkerProcess(LiveProcess):
    """The worker child: the project's routing, consumer threads, static files."""

    role = "worker"
    description = "live worker"


# -- the child's side ------------------------------------------------------------------------


def _report_ready(ready_fd: int, *words: str) -> None:
    os.write(ready_fd, " ".join(["ready", *words]).encode("ascii") + b"\n")
    os.close(ready_fd)


def _stop_when_orphaned(stop: Callable[[], None]) -> None:
    """Call ``stop`` if stdin reaches end of file: the test process went away without stopping us."""
    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered reader aborts interpreter shutdown.
        while os.read(0, 1024):
            pass
        logger.warning("The test process is gone; stopping")
        stop()

    threading.Thread(target=watch, name="live-lifeline", daemon=True).start()


def setup_django(spec: LiveSpec) -> Any:
    """Set Django up as the test process has it; return the layer wrapper for ``spec.alias``."""
    import django
    from django.db import connections
    from django.test.utils import modify_settings, override_settings

    django.setup(set_prefix=False)
    for alias, name in spec.databases.items():
        # Before any connection opens: the test database, not the one the settings name.
        connections[alias].settings_dict["NAME"] = name
    if spec.overridden_settings:
        override_settings(**spec.overridden_settings).enable()
    operations = list(spec.modified_settings or [])
    # As Django's LiveServerTestCase: the test's host must pass ALLOWED_HOSTS checks.
    operations.append(("ALLOWED_HOSTS", {"append": [spec.host]}))
    modify_settings(operations).enable()

    from channels.asgi import build_layer, channel_layers

    if spec.layer is not None:
        routing = channel_layers.configs.get(spec.alias, {}).get("ROUTING", [])
        channel_layers.set(spec.alias, build_layer(spec.alias, spec.layer["BACKEND"], spec.layer["CONFIG"], routing))
    return channel_layers[spec.alias]


def run_server(spec: LiveSpec, ready_fd: int) -> int:
    """Run the interface server on ``spec.host``, port 0; report ``ready PORT``; return its exit code."""
    from interface_server.config import ServerConfig, build_endpoint_strings
    from interface_server.server import Server

    layer = setup_django(spec)
    server: Server

    def on_ready(addresses: list[str]) -> None:
        _report_ready(ready_fd, str(server.listening_ports[0]))

    config = ServerConfig(endpoints=build_endpoint_strings(spec.host, 0), on_ready=on_ready, verbosity=0,
                          signal_handlers=True)
    server = Server(layer.channel_layer, config)
    _stop_when_orphaned(server.stop)
    return server.run()


def run_worker(spec: LiveSpec, ready_fd: int) -> int:
    """Run a worker for the project's routing, as ``runworker`` would; report ``ready`` from ``worker_ready``.

    Returns:
        0, once the worker stopped (after SIGTERM, or when orphaned).
    """
    layer = setup_django(spec)
    from django.apps import apps

    from channels.signals import worker_process_ready, worker_ready
    from channels.worker import ChannelsHooks, Worker

    router = layer.router
    if spec.serve_static and apps.is_installed("django.contrib.staticfiles"):
        from channels.staticfiles import StaticFilesRouter

        router = StaticFilesRouter(router)

    def announce(sender: Any, **kwargs: Any) -> None:
        _report_ready(ready_fd)

    worker_ready.connect(announce, weak=False)
    worker = Worker(layer, router=router, hooks=ChannelsHooks(), threads=spec.worker_threads, signal_handlers=True)
    _stop_when_orphaned(worker.stop)
    worker_process_ready.send(sender=worker)  # as runworker sends it
    worker.run()
    return 0


ROLES = {"server": run_server, "worker": run_worker}


def main(argv: list[str] | None = None) -> int:
    """Entry point of a child: ``python -m channels.test.liveprocess ROLE SPEC READY_FD``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ROLES or not args[2].isdigit():
        sys.stderr.write(f"usage: python -m channels.test.liveprocess {{{','.join(ROLES)}}} SPEC READY_FD "
                         f"(got {args!r})\n")
        return 2
    role, spec_path, ready_fd = args[0], Path(args[1]), int(args[2])
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s %(levelname)s [live {role}] %(name)s %(message)s")
    spec = LiveSpec.read(spec_path)
    os.environ["DJANGO_SETTINGS_MODULE"] = spec.settings_module
    return ROLES[role](spec, ready_fd)


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: the pickled LiveSpec names that module's class.
    from channels.test.liveprocess import main as _main

    sys.exit(_main())
