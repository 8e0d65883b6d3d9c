"""Start and stop the two stacks the interface-server benchmarks compare.

* ``ours``: ``python -m interface_server`` + ``echo_app.py`` on this
  project's Redis layer.
* ``daphne``: Daphne 1.4.2 + the same ``echo_app.py`` on asgi_redis 1.4.3,
  both run by the historical virtualenv's Python (``/tmp/channels1-venv``,
  installed by ``install-channels1-stack.sh``).

Both use one redis-server (started here on a free port) with their own key
prefix, and a channel capacity of 1000.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_VENV = Path(os.environ.get("CHANNELS1_VENV", "/tmp/channels1-venv"))
HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(REPO))
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

LAYER_MODULES = {
    "ours": "from asgi_backends.redis import RedisChannelLayer\n"
            "channel_layer = RedisChannelLayer(hosts=[{url!r}], prefix={prefix!r}, capacity=1000)\n",
    "daphne": "from asgi_redis import RedisChannelLayer\n"
              "channel_layer = RedisChannelLayer(hosts=[{url!r}], prefix={prefix!r}, capacity=1000)\n",
}


def stop_process_groups(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process's group, then SIGKILL the groups still there after 10 s (processes started with ``start_new_session``)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Stack:
    """One running interface server + echo application; a context manager."""

    def __init__(self, kind: str, redis_url: str, workdir: Path, apps: int = 1, server_args: tuple = ()) -> None:
        if kind not in LAYER_MODULES:
            raise ValueError(f"stack must be one of {sorted(LAYER_MODULES)}, not {kind!r}")
        self.kind = kind
        self.redis_url = redis_url
        self.workdir = workdir
        self.port = free_port()
        self.apps = apps
        self.server_args = list(server_args)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "Stack":
        prefix = f"bench-{self.kind}-{os.getpid()}-{time.monotonic_ns()}:"
        module = f"benchlayer_{self.kind}"
        (self.workdir / f"{module}.py").write_text(LAYER_MODULES[self.kind].format(url=self.redis_url, prefix=prefix))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(self.workdir), str(REPO)]))
        if self.kind == "ours":
            python = sys.executable
            server = [python, "-m", "interface_server", f"{module}:channel_layer", "-p", str(self.port), "-v", "0",
                      *self.server_args]
            backend = "ours"
        else:
            python = str(OLD_VENV / "bin" / "python")
            env["PYTHONPATH"] = str(self.workdir)  # the old stack must not see this project's packages
            server = [str(OLD_VENV / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "-v", "0",
                      f"{module}:channel_layer"]
            backend = "asgi_redis"
        app = [python, str(HERE / "echo_app.py"), "--backend", backend, "--redis", self.redis_url, "--prefix", prefix]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": str(self.workdir)}
        for _ in range(self.apps):
            self.processes.append(subprocess.Popen(app, **quiet))
        self.processes.append(subprocess.Popen(server, **quiet))
        wait_listening(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Bench:
    """A redis-server and a scratch directory for a benchmark session."""

    def __enter__(self) -> "Bench":
        self.redis = RedisServer().start()
        self.tmp = tempfile.TemporaryDirectory(prefix="is-bench-")
        return self

    def stack(self, kind: str, apps: int = 1, server_args: tuple = ()) -> Stack:
        return Stack(kind, self.redis.url, Path(self.tmp.name), apps, server_args)

    def __exit__(self, *exc: object) -> None:
        self.redis.cleanup()
        self.tmp.cleanup()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
