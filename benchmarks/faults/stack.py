"""The processes a fault scenario runs: Redis (or a Sentinel set), one interface server, N workers, load clients.

Every process is started in its own session with its output in a log file
under the run's directory, and ended by its PID. The interface server
listens on a socket the harness opened and hands over with ``--fd``, as
systemd socket activation does, so a restarted server takes over the same
listening socket and connections made meanwhile wait in its backlog.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from tests.support.redis_server import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROJECT = HERE / "project"


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Call ``condition()`` until it returns something truthy and return that.

    Raises:
        TimeoutError: ``what`` did not happen within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:g}s")
        time.sleep(interval)  # what we wait for (a port, a log line, another process) offers nothing to block on


def raise_fd_limit() -> None:
    """Let this process and its children open as many files as the hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    """A started process with its output in ``log``; ended by PID (it leads its own session)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path = PROJECT,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.started = time.monotonic()
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True, pass_fds=pass_fds)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self) -> int:
        """Lines written to the log so far."""
        with open(self.log, "rb") as log:
            return sum(1 for _ in log)

    def lines_since(self, mark: int) -> list[str]:
        return self.output().splitlines()[mark:]

    def wait_for_output(self, text: str, timeout: float = 30.0, after: int = 0) -> None:
        """Wait until ``text`` appears in the log past line ``after``.

        Raises:
            RuntimeError: the process exited first.
            TimeoutError: it did not appear within ``timeout``.
        """
        def seen() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return any(text in line for line in self.lines_since(after))

        wait_until(seen, timeout, f"{text!r} from {self.name}")

    def signal(self, signo: int) -> None:
        if self.alive():
            os.kill(self.pid, signo)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the process's group and wait; SIGKILL it if it lingers. Returns the exit status."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


def process_sample(pid: int) -> tuple[float, int]:
    """Return ``(RSS in MiB, open file descriptors)`` of ``pid``."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
                break
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class RedisNode:
    """One ``redis-server`` (no persistence) on a fixed loopback port; ``extra`` adds config, e.g. ``--replicaof``."""

    def __init__(self, logdir: Path, name: str, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed: run 'apt-get install -y redis-server'")
        self.name = name
        self.port = port or free_port()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix=f"faults-{name}-", dir=logdir))
        self.log = logdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisNode:
        """Start it and wait until it answers PING."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning", *self.extra],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.ping, timeout, f"{self.name} answering PING")
        return self

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, signo: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signo)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None


class SentinelSet:
    """A master, one replica and ``count`` sentinels watching them as ``mymaster`` (quorum: a majority)."""

    def __init__(self, logdir: Path, count: int = 1) -> None:
        self.logdir = logdir
        self.master = RedisNode(logdir, "redis-master")
        self.replica = RedisNode(logdir, "redis-replica", extra=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.ports = [free_port() for _ in range(count)]
        self.sentinels: list[subprocess.Popen] = []

    def start(self) -> SentinelSet:
        self.master.start()
        self.replica.start()
        quorum = len(self.ports) // 2 + 1
        for n, port in enumerate(self.ports):
            config = self.logdir / f"sentinel{n}.conf"
            # A failover 1 s after the master stops answering; a new one may follow 5 s later.
            config.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.logdir}\n"
                              f"sentinel monitor mymaster 127.0.0.1 {self.master.port} {quorum}\n"
                              "sentinel down-after-milliseconds mymaster 1000\n"
                              "sentinel failover-timeout mymaster 5000\n")
            with open(self.logdir / f"sentinel{n}.log", "ab") as out:
                self.sentinels.append(subprocess.Popen([shutil.which("redis-server"), str(config), "--sentinel"],
                                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(self._replicating, 20, "the replica in sync and every sentinel seeing it", interval=0.1)
        return self

    def _replicating(self) -> bool:
        try:
            for port in self.ports:
                with redis.Redis(port=port, socket_timeout=1) as client:
                    if not client.sentinel_slaves("mymaster"):
                        return False
            with redis.Redis(port=self.replica.port, socket_timeout=1) as client:
                return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def master_port(self) -> int | None:
        """The master the sentinels name now (None if none answers)."""
        for port in self.ports:
            try:
                with redis.Redis(port=port, socket_timeout=1) as client:
                    address = client.sentinel_get_master_addr_by_name("mymaster")
                    if address:
                        return int(address[1])
            except redis.RedisError:
                continue
        return None

    @property
    def env(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(10)
        self.sentinels = []
        self.replica.stop()
        self.master.stop()


class Deployment:
    """Redis, one interface server (on an inherited listening socket) and workers on the fault project.

    Args:
        logdir: where logs, journals and client results go.
        workers, threads, prefetch: worker processes and their ``runworker`` options.
        http_timeout: the interface server's ``--http-timeout``.
        sentinels: 0 for one plain Redis; N for a master, a replica and N sentinels.
        connect_capacity: the capacity of ``websocket.connect`` (the layer's default if None).
    """

    def __init__(self, logdir: Path, workers: int = 2, threads: int = 1, prefetch: int = 1,
                 http_timeout: float = 10.0, sentinels: int = 0, connect_capacity: int | None = None) -> None:
        self.logdir = logdir
        self.journal = logdir / "journal"
        self.journal.mkdir(parents=True, exist_ok=True)
        self.worker_count, self.threads, self.prefetch = workers, threads, prefetch
        self.http_timeout = http_timeout
        self.connect_capacity = connect_capacity
        self.redis: RedisNode | None = None
        self.sentinel: SentinelSet | None = None
        if sentinels:
            self.sentinel = SentinelSet(logdir, sentinels)
        else:
            self.redis = RedisNode(logdir, "redis")
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4096)
        self.port = self.listener.getsockname()[1]
        self.server: Proc | None = None
        self.workers: list[Proc] = []
        self.retired: list[Proc] = []
        self._serial = 0

    # -- starting -------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTS_")}
        env.update(PYTHONPATH=f"{REPO}{os.pathsep}{PROJECT}", PYTHONUNBUFFERED="1",
                   DJANGO_SETTINGS_MODULE="faultproj.settings", FAULTS_JOURNAL=str(self.journal))
        if self.connect_capacity is not None:
            env["FAULTS_CONNECT_CAPACITY"] = str(self.connect_capacity)
        if self.sentinel is not None:
            env["FAULTS_SENTINELS"] = self.sentinel.env
        else:
            env["FAULTS_REDIS_URL"] = self.redis.url
        return env

    def start(self) -> Deployment:
        raise_fd_limit()
        if self.sentinel is not None:
            self.sentinel.start()
        else:
            self.redis.start()
        self.start_server()
        for _ in range(self.worker_count):
            self.start_worker()
        wait_until(self._answers, 30, "the deployment answering HTTP", interval=0.1)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/?k=warmup", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def start_server(self) -> Proc:
        fd = self.listener.fileno()
        self._serial += 1
        server = Proc(f"server{self._serial}", [
            sys.executable, "-m", "interface_server", "faultproj.asgi:channel_layer", "--fd", str(fd),
            "--http-timeout", str(self.http_timeout)], self.env, self.logdir / f"server{self._serial}.log",
            pass_fds=(fd,))
        server.wait_for_output("Listening on")
        self.server = server
        return server

    def start_worker(self) -> Proc:
        self._serial += 1
        worker = Proc(f"worker{self._serial}", [
            sys.executable, str(PROJECT / "manage.py"), "runworker", "--threads", str(self.threads),
            "--prefetch", str(self.prefetch)], self.env, self.logdir / f"worker{self._serial}.log")
        worker.wait_for_output("Listening on channels")
        self.workers.append(worker)
        return worker

    def retire(self, proc: Proc) -> None:
        """Note that ``proc`` (a worker or the server) has ended."""
        if proc in self.workers:
            self.workers.remove(proc)
        self.retired.append(proc)

    # -- looking -----------------------------------------------------------------------

    def processes(self) -> list[Proc]:
        """The interface server and the workers running now."""
        return [p for p in [self.server, *self.workers] if p is not None and p.alive()]

    def redis_port(self) -> int:
        if self.sentinel is not None:
            return self.sentinel.master_port() or self.sentinel.master.port
        return self.redis.port

    def redis_pid(self) -> int | None:
        if self.sentinel is not None:
            return None
        return self.redis.pid

    def dbsize(self) -> int:
        with redis.Redis(port=self.redis_port(), socket_timeout=2) as client:
            return client.dbsize()

    def keys_by_kind(self) -> dict[str, int]:
        """Count the keys by their first two ``:``-separated parts (``asgi:group``, ``cache:1``...)."""
        counts: dict[str, int] = {}
        with redis.Redis(port=self.redis_port(), socket_timeout=2) as client:
            for key in client.scan_iter(count=1000):
                parts = key.decode(errors="replace").split(":")
                kind = ":".join(parts[:2]) if parts[0] != "asgi" or len(parts) < 3 else f"asgi:{parts[1].split('.')[0]}"
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def pending(self, channel: str) -> int:
        """Unread messages on ``channel`` (``LLEN`` of its list)."""
        with redis.Redis(port=self.redis_port(), socket_timeout=2) as client:
            return client.llen(f"asgi:{channel}")

    def journal_entries(self) -> dict[int, list[tuple[str, str]]]:
        """Every worker's journal: pid -> ``[(event, key), ...]`` in the order written."""
        entries: dict[int, list[tuple[str, str]]] = {}
        for path in self.journal.glob("journal-*.log"):
            pid = int(path.stem.split("-")[1])
            entries[pid] = [tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if " " in line]
        return entries

    # -- stopping ------------------------------------------------------------------------

    def close(self) -> None:
        for proc in [self.server, *self.workers]:
            if proc is not None:
                proc.stop()
        if self.sentinel is not None:
            self.sentinel.stop()
        else:
            self.redis.stop()
        self.listener.close()


class Load:
    """One load client process (see :mod:`benchmarks.faults.clients`)."""

    def __init__(self, deployment: Deployment, kind: str, name: str, **config: Any) -> None:
        self.name = name
        self.out = deployment.logdir / f"client-{name}.json"
        config.update(kind=kind, name=name, port=deployment.port, out=str(self.out))
        self.config = config
        self.log = deployment.logdir / f"client-{name}.log"
        self.result: dict[str, Any] | None = None
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as err:
            self.popen = subprocess.Popen([sys.executable, "-m", "benchmarks.faults.clients", json.dumps(config)],
                                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                                          start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the client printed ``ready`` (every socket open).

        Raises:
            RuntimeError: it exited or did not get ready in time.
        """
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        line = self.popen.stdout.readline() if ready else b""
        if not line.startswith(b"ready"):
            self.popen.kill()
            raise RuntimeError(f"load client {self.name} not ready within {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM it, wait for it to drain and write its results; return them."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
            raise RuntimeError(f"load client {self.name} did not finish within {timeout}s") from None
        self.popen.stdout.close()
        if self.popen.returncode != 0:
            raise RuntimeError(f"load client {self.name} exited {self.popen.returncode}: "
                               f"{self.log.read_text()[-3000:]}")
        self.result = json.loads(self.out.read_text())
        return self.result

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
