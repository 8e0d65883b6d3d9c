"""Starting the e2e project's processes and talking to them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import websocket

from tests.support.redis_server import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "project"


def project_env(db_path: Path, redis_url: str | None = None) -> dict[str, str]:
    """Environment for the project's processes (layer chosen by E2E_REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2E_")}
    env.update(E2E_DB=str(db_path), PYTHONPATH=f"{REPO}{os.pathsep}{PROJECT}", PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="chatproj.settings")
    if redis_url:
        env["E2E_REDIS_URL"] = redis_url
    return env


class Proc:
    """A started process with its output in a file; ended by PID (its own session)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path = PROJECT) -> None:
        self.log = log
        self.args = args
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.args} exited {self.popen.returncode}:\n{self.output()}")
            return text in self.output()

        try:
            wait_until(seen, timeout, what=f"{text!r} from {self.args}", interval=0.02)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.output()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the process's group (it and its children) and wait; kill if it lingers."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


def manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT / "manage.py"), *args]


@contextmanager
def deployment(env: dict[str, str], logs: Path, workers: int = 2) -> Iterator[tuple[int, list["Proc"]]]:
    """Run the e2e project as in production: ``interface-server`` plus ``workers`` runworkers.

    Yields ``(http port, [worker Procs])`` once everything listens; stops them all afterwards.
    """
    port = free_port()
    procs: list[Proc] = []
    try:
        procs.append(Proc([sys.executable, "-m", "interface_server", "chatproj.asgi:channel_layer",
                           "-b", "127.0.0.1", "-p", str(port)], env, logs / "server.log"))
        started = [Proc(manage("runworker", "--threads", "2"), env, logs / f"worker{n}.log") for n in range(workers)]
        procs.extend(started)
        for worker in started:
            worker.wait_for_output("Listening on channels")
        wait_for_port(port)
        yield port, started
    finally:
        for proc in procs:
            proc.stop()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, timeout, what=f"something listening on {port}", interval=0.02)


def http_get(port: int, path: str, data: bytes | None = None) -> tuple[int, bytes]:
    """GET (or POST ``data``); return (status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", data=data, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ws_connect(port: int, path: str) -> websocket.WebSocket:
    return websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=10)


__all__ = ["Proc", "deployment", "free_port", "http_get", "manage", "project_env", "wait_for_port", "ws_connect"]
