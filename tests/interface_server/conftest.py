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
from twisted.internet import task

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


# -- protocol tests without processes: bytes through a StringTransport, time on a task.Clock --


class FakeReactor(task.Clock):
    """A ``task.Clock`` that is enough of a reactor for the protocols: ``callFromThread`` calls at once."""

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class HeldSender:
    """Holds every message sent until :meth:`release` (a slow layer), then sends it as the Sender would."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.held: list[tuple[str, dict, Any, Any]] = []

    def send(self, key: int, channel: str, message: dict, on_error: Any = None, retry_full: bool = False,
             flow: Any = None) -> None:
        self.held.append((channel, message, on_error, flow))

    def release(self, count: int | None = None) -> None:
        """Send the oldest ``count`` held messages (all by default)."""
        count = len(self.held) if count is None else count
        batch, self.held = self.held[:count], self.held[count:]
        for channel, message, on_error, flow in batch:
            try:
                self.layer.send(channel, message)
            except Exception as exc:  # as the Sender: the caller hears of the failure
                if on_error is not None:
                    on_error(exc)
            if flow is not None:
                flow.finished_here()

    def close(self) -> None:
        self.release()


class HTTPHarness:
    """A :class:`ServerContext` on an in-memory layer and a fake clock; ``connect()`` opens a connection.

    Sends are inline (``sender_threads=0``), so a request is in the layer as
    soon as the bytes that complete it have been fed.
    """

    def __init__(self, layer: Any = None, hold_sends: bool = False, **options: Any) -> None:
        from asgi_backends.inmemory import ChannelLayer
        from interface_server.config import ServerConfig
        from interface_server.context import ServerContext
        from interface_server.http_protocol import HTTPFactory

        self.clock = FakeReactor()
        self.layer = layer or ChannelLayer()
        options.setdefault("sender_threads", 0)
        self.config = ServerConfig(**options)
        # With hold_sends, messages wait until ``sender.release()``: a layer that is slow to take them.
        self.sender = HeldSender(self.layer) if hold_sends else None
        self.ctx = ServerContext(self.layer, self.config, self.clock, sender=self.sender)
        self.factory = HTTPFactory(self.ctx)

    def connect(self, peer: tuple[str, int] = ("127.0.0.1", 50000)) -> FakeClient:
        return FakeClient(self, peer)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def advance_to(self, when: float) -> None:
        self.clock.advance(when - self.clock.seconds())

    def receive(self, channel: str = "http.request") -> dict | None:
        """The next message on ``channel`` (the application's view), or None."""
        got, message = self.layer.receive([channel], block=False)
        return message if got is not None else None


class FakeClient:
    """One client connection: ``send`` bytes in, read what the server wrote with ``output``."""

    def __init__(self, harness: HTTPHarness, peer: tuple[str, int]) -> None:
        from twisted.internet.address import IPv4Address, IPv6Address
        from twisted.internet.testing import StringTransport

        family = IPv6Address if ":" in peer[0] else IPv4Address
        self.harness = harness
        self.transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
                                         peerAddress=family("TCP", *peer))
        self.protocol = harness.factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> FakeClient:
        self.protocol.dataReceived(data)
        return self

    def request(self) -> dict:
        """The ``http.request`` this connection sent (fails if there is none)."""
        message = self.harness.receive("http.request")
        assert message is not None, f"no http.request; the server wrote {self.transport.value()[:300]!r}"
        return message

    def reply(self, reply_channel: str, status: int | None = 200, content: bytes = b"OK",
              more: bool = False, headers: list | None = None) -> None:
        """Play the application: send one response message (``status=None`` for a later chunk)."""
        message: dict[str, Any] = {"content": content, "more_content": more}
        if status is not None:
            message["status"] = status
            message["headers"] = headers if headers is not None else [[b"content-type", b"text/plain"]]
        self.harness.ctx.receiver.dispatch(reply_channel, message)

    def output(self) -> bytes:
        """Everything the server wrote since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def status(self) -> int:
        """The status code of the first response in what the server wrote (consumes the output)."""
        data = self.output()
        assert data.startswith(b"HTTP/1."), data[:200]
        return int(data.split(b" ", 2)[1])

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    @property
    def aborted(self) -> bool:
        return self.transport.disconnected

    def lose(self) -> None:
        """The client goes away."""
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.protocol.connectionLost(Failure(ConnectionDone()))
