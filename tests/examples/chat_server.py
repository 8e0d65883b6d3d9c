"""Start the chat example's ``runserver`` as a real process for the browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CHAT = REPO / "examples" / "chat"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChatServer:
    """``manage.py runserver`` of the chat example on a free port with its own database.

    Args:
        workdir: a temporary directory for the database and the log.
        layer: the example's ``CHAT_LAYER``. ``inmemory`` runs everything in
            runserver; a cross-process layer (``sqlite``) runs
            ``runserver --noworker`` plus ``workers`` runworker processes.
        workers: runworker processes for a cross-process layer.
    """

    def __init__(self, workdir: Path, layer: str = "inmemory", workers: int = 2) -> None:
        self.workdir = workdir
        self.layer = layer
        self.workers = workers if layer != "inmemory" else 0
        self.worker_processes: list[subprocess.Popen[bytes]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "runserver.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = dict(
            os.environ,
            # Other tests put their own project in the environment; manage.py
            # only sets this if it is missing.
            DJANGO_SETTINGS_MODULE="chatsite.settings",
            CHAT_DB_PATH=str(workdir / "chat.sqlite3"),
            CHAT_LAYER=layer,
            CHAT_LAYER_PATH=str(workdir / "layer"),
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            PYTHONUNBUFFERED="1",
        )

    def migrate(self) -> None:
        """Create the example's tables and default rooms."""
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=CHAT,
                       env=self.env, check=True, timeout=60)

    def start(self, timeout: float = 30.0) -> ChatServer:
        """Start runserver and wait until it serves the lobby page."""
        log = open(self.log_path, "ab")
        runserver = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        if self.workers:
            runserver.append("--noworker")
        self.process = self._spawn(runserver, log)
        if not self.worker_processes:
            self.worker_processes = [self._spawn([sys.executable, "manage.py", "runworker"], log)
                                     for _ in range(self.workers)]
        log.close()
        def serving() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"runserver exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/room/lobby/", timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, OSError):
                return False

        try:
            wait_until(serving, timeout, what=f"runserver to serve {self.url}", interval=0.1)
        except AssertionError:
            self.stop()
            raise RuntimeError(f"runserver did not serve {self.url} within {timeout}s:\n{self.log()}") from None
        return self

    def _spawn(self, argv: list[str], log) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, cwd=CHAT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, workers: bool = False) -> None:
        """Stop runserver -- and the workers too if ``workers`` -- by their process groups."""
        doomed = [self.process] if self.process is not None else []
        if workers:
            doomed += self.worker_processes
            self.worker_processes = []
        for process in doomed:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in doomed:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        """Return what the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""
