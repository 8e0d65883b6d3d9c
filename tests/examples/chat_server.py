"""Start the chat example's ``runserver`` as a real process for the browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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
        layer: the example's ``CHAT_LAYER`` (``inmemory`` runs everything in
            runserver).
    """

    def __init__(self, workdir: Path, layer: str = "inmemory") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "runserver.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = dict(
            os.environ,
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
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=CHAT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"runserver exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/room/lobby/", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"runserver did not serve {self.url} within {timeout}s:\n{self.log()}")
            time.sleep(0.1)  # nothing to block on until the port opens

    def stop(self) -> None:
        """Stop runserver (SIGTERM, then SIGKILL) by the process group it leads."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
        self.process = None

    def log(self) -> str:
        """Return what the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""
