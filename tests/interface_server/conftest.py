"""Start the real interface server as a subprocess and play the application side.

Each server gets a layer module written to a temporary directory: a Redis
layer on the session's redis-server with a key prefix of its own, so tests
never see each other's messages. The test process builds the same layer
and reads/writes it directly, as a worker would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"Listening on .*?tcp:([\d.]+):(\d+)")


def layer_source(redis_url: str, prefix: str, capacity: dict[str, int] | None = None) -> str:
    """Python source of a module defining ``channel_layer`` for one server."""
    return (
        "from asgi_backends.redis import RedisChannelLayer\n"
        f"channel_layer = RedisChannelLayer(hosts=[{redis_url!r}], prefix={prefix!r}, "
        f"channel_capacity={capacity or {}!r})\n"
    )


def make_layer(redis_url: str, prefix: str, capacity: dict[str, int] | None = None) -> Any:
    from asgi_backends.redis import RedisChannelLayer

    return RedisChannelLayer(hosts=[redis_url], prefix=prefix, channel_capacity=capacity or {}, blocking_timeout=0.5)


class ServerProcess:
    """A running ``python -m interface_server`` and the layer it uses."""

    def __init__(self, tmp: Path, redis_url: str, args: list[str], capacity: dict[str, int] | None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        prefix = f"t{uuid.uuid4().hex[:10]}:"
        module = f"islayer_{uuid.uuid4().hex[:10]}"
        (tmp / f"{module}.py").write_text(layer_source(redis_url, prefix, capacity))
        self.layer = make_layer(redis_url, prefix, capacity)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp), str(REPO)]))
        self.access_log = tmp / f"{module}.access.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interface_server", f"{module}:channel_layer", "-p", "0",
             "--access-log", str(self.access_log), *args],
            cwd=str(tmp), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, pass_fds=pass_fds,
        )
        self.output: list[str] = []
        self.sockets: list[socket.socket] = []
        self._port_found = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._port_found.wait(15):
            self.kill()
            raise RuntimeError("interface server did not start:\n" + "".join(self.output))
        if not self.port:
            raise RuntimeError("interface server exited:\n" + "".join(self.output))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(2))
                self._port_found.set()
        self._port_found.set()

    @property
    def log(self) -> str:
        return "".join(self.output)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.sockets.append(sock)  # closed at teardown, so none leaks a ResourceWarning
        return sock

    def receive(self, channels: str | list[str], timeout: float = 5.0, reply_channel: str | None = None) -> tuple[str, dict]:
        """Play the application: wait (with a deadline) for a message on ``channels``.

        With ``reply_channel``, messages of other connections (left over by
        earlier tests on a shared server) are skipped.
        """
        if isinstance(channels, str):
            channels = [channels]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            channel, message = self.layer.receive(channels, block=True)
            if channel is not None and (reply_channel is None or message.get("reply_channel") == reply_channel):
                return channel, message
        raise AssertionError(f"nothing arrived on {channels} within {timeout}s; server output:\n{self.log}")

    def nothing_on(self, channel: str) -> bool:
        return self.layer.receive([channel], block=False) == (None, None)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def kill(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture
def start_server(tmp_path, redis_server):
    """Factory: ``start_server(*cli_args, capacity={...})`` → a running :class:`ServerProcess`."""
    started: list[ServerProcess] = []

    def start(*args: str, capacity: dict[str, int] | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path, redis_server.url, list(args), capacity)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_server):
    """One server shared by a module's tests (small limits so the edge cases are cheap)."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("server"), redis_server.url,
        ["--body-inline-limit", "1024", "--max-body-size", "200000", "--max-header-size", "4096",
         "--http-timeout", "1.5"],
        None,
    )
    yield proc
    proc.kill()


wait_for = wait_until


def recv_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    """Read from ``sock`` until ``marker`` is in the data (or the peer closes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read until the peer closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
