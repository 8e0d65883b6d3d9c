"""C1 idle connections, side by side: this project's interface server vs Daphne 1.4.2.

Each stack serves ``fullstack_project/`` (interface server + a fresh
redis-server + one worker, started by ``fullstack.Stack``; the worker
accepts the handshakes). One asyncio process (the standard-library client
of ``ws_bench``) opens ``--connections`` WebSockets to ``/echo/`` with at
most ``--in-flight`` handshakes outstanding, sends nothing, waits
``--hold`` seconds, and reports:

* held: accepted and still open at the end of the hold (a watcher per
  connection notices a close frame, EOF or reset);
* refused/failed, by cause (``HTTP/1.1 503 ...`` status, timeout, reset,
  closed before answering), and attempts not made before ``--deadline``;
* the interface server process's RSS (``VmRSS``) before the first connect
  and at the end of the hold, and the growth per held connection.

The ``RLIMIT_NOFILE`` of this process is raised to cover the
connections (the hard limit too, when run as root); the stacks inherit it, and each server's limit is read back
from ``/proc/<pid>/limits``.

Stacks: ``ours`` (``python -m interface_server`` + ``manage.py runworker``)
and ``ch1`` (Daphne 1.4.2 + Channels 1.1.8 ``runworker`` + asgi_redis
1.4.3), both at the layer's default capacity unless ``--capacity`` says
otherwise (``websocket.connect`` holds that many waiting handshakes; when
it is full, both servers refuse with 503).

Usage::

    python benchmarks/idle.py [--connections 5000] [--in-flight 200] [--runs 2] [--capacity default]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fullstack import REPO, Stack, old_stack_shim  # noqa: E402
from ws_bench import handshake, read_message  # noqa: E402


def raise_nofile(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``needed``; return the new soft limit.

    The hard limit is raised too where the process may (root, or
    CAP_SYS_RESOURCE); otherwise the soft limit stops at it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, needed))
            hard = needed
        except (ValueError, OSError):
            pass  # not allowed: the caller reports the limit
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def open_files_limit(pid: int) -> int:
    """The soft ``Max open files`` of process ``pid``."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                value = line.split()[3]
                return sys.maxsize if value == "unlimited" else int(value)
    raise RuntimeError(f"no 'Max open files' line in /proc/{pid}/limits")


def rss_kib(pid: int) -> int:
    """Resident set size (``VmRSS``) of process ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


class Pool:
    """The idle connections of one session and what became of each attempt."""

    def __init__(self) -> None:
        self.open = 0
        self.closed_later = 0
        self.failures: collections.Counter[str] = collections.Counter()
        self.tasks: list[asyncio.Task] = []

    async def attempt(self, host: str, port: int, gate: asyncio.Semaphore, timeout: float, deadline: float) -> None:
        """One handshake to ``/echo/``: on success start its watcher, otherwise count the failure by cause."""
        async with gate:
            if time.monotonic() > deadline:
                self.failures["not attempted (deadline)"] += 1
                return
            try:
                reader, writer = await asyncio.wait_for(handshake(host, port, "/echo/"), timeout)
            except asyncio.TimeoutError:
                self.failures["handshake timeout"] += 1
                return
            except asyncio.IncompleteReadError:
                self.failures["closed before answering"] += 1
                return
            except ConnectionError as exc:
                status = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
                self.failures[status if status.startswith("HTTP/") else type(exc).__name__] += 1
                return
            except OSError as exc:
                self.failures[type(exc).__name__] += 1
                return
        self.open += 1
        self.tasks.append(asyncio.create_task(self.watch(reader, writer)))

    async def watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wait until the server ends the connection (answering its pings meanwhile); count it closed."""
        try:
            while await read_message(reader, writer) is not None:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.open -= 1
        self.closed_later += 1
        writer.close()

    async def close_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def session(port: int, server_pid: int, connections: int, in_flight: int, hold: float, timeout: float,
                  connect_seconds: float) -> dict:
    """Open the idle connections, hold them ``hold`` s, and return held/failed counts and the server's RSS."""
    pool = Pool()
    gate = asyncio.Semaphore(in_flight)
    rss_before = rss_kib(server_pid)
    started = time.monotonic()
    await asyncio.gather(*(pool.attempt("127.0.0.1", port, gate, timeout, started + connect_seconds)
                           for _ in range(connections)))
    connect_time = time.monotonic() - started
    await asyncio.sleep(hold)  # the idle period being measured
    held = pool.open
    rss_after = rss_kib(server_pid)
    await pool.close_all()
    return {"held": held, "accepted": held + pool.closed_later, "closed_later": pool.closed_later,
            "failed": sum(pool.failures.values()), "failures": dict(pool.failures), "connect_s": connect_time,
            "rss_before_kib": rss_before, "rss_after_kib": rss_after,
            "kib_per_held": (rss_after - rss_before) / held if held else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=200, help="handshakes outstanding at once")
    parser.add_argument("--runs", type=int, default=2, help="runs per stack, alternating")
    parser.add_argument("--hold", type=float, default=5.0, help="idle seconds before counting what is held")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one handshake may take")
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds to start all handshakes in")
    parser.add_argument("--capacity", default="default", help="channel capacity of both stacks, or 'default'")
    parser.add_argument("--stacks", default="ours,ch1")
    parser.add_argument("--old-venv", default="/tmp/channels1-venv")
    args = parser.parse_args()

    needed = args.connections + 1000  # sockets plus Redis connections, logs, libraries
    limit = raise_nofile(needed)
    if limit < needed:
        parser.error(f"RLIMIT_NOFILE hard limit allows {limit} files, {needed} needed; lower --connections")
    logdir = Path(tempfile.mkdtemp(prefix="idle-bench-"))
    env = {"BENCH_CAPACITY": args.capacity}
    all_stacks = {
        "ours": Stack("ours", sys.executable, [sys.executable, "-m", "interface_server"], 1, str(REPO), env=env),
        "ch1": Stack("ch1", f"{args.old_venv}/bin/python", [f"{args.old_venv}/bin/daphne"], 1,
                     old_stack_shim(logdir), env=env),
    }
    names = args.stacks.split(",")
    results: dict[str, list[dict]] = {name: [] for name in names}
    for run_no in range(args.runs):
        for name in (names if run_no % 2 == 0 else list(reversed(names))):
            stack = all_stacks[name]
            port = stack.start(logdir)
            server_pid = stack.procs[0].pid
            try:
                server_limit = open_files_limit(server_pid)
                if server_limit < needed:
                    raise RuntimeError(f"{name}: server pid {server_pid} may open only {server_limit} files")
                row = asyncio.run(session(port, server_pid, args.connections, args.in_flight, args.hold,
                                          args.timeout, args.deadline))
            finally:
                stack.stop()
            results[name].append(row)
            print(f"run {run_no + 1} {name:4s} held {row['held']:5d} of {args.connections} "
                  f"(accepted {row['accepted']}, closed later {row['closed_later']}), failed {row['failed']} "
                  f"{row['failures'] or ''} in {row['connect_s']:.1f}s | server RSS "
                  f"{row['rss_before_kib'] / 1024:.1f} -> {row['rss_after_kib'] / 1024:.1f} MiB, "
                  f"{row['kib_per_held']:.1f} KiB per held connection",
                  flush=True)

    print(f"\nC1: {args.connections} idle WebSockets, {args.in_flight} handshakes in flight, capacity "
          f"{args.capacity}; medians of {args.runs} runs")
    keys = ("held", "failed", "kib_per_held", "connect_s")
    med = {name: {key: statistics.median(r[key] for r in rows) for key in keys} for name, rows in results.items()}
    for name, values in med.items():
        print(f"  {name:4s} held {values['held']:7.0f}  failed {values['failed']:7.0f}  "
              f"{values['kib_per_held']:5.1f} KiB per held connection  "
              f"all handshakes done in {values['connect_s']:5.1f} s")
    if "ours" in med and "ch1" in med:
        ours, old = med["ours"], med["ch1"]
        print(f"  ours / ch1: held {ours['held'] / max(1, old['held']):.2f}x, "
              f"memory per connection {ours['kib_per_held'] / old['kib_per_held']:.2f}x")
    print(f"logs in {logdir}")


if __name__ == "__main__":
    main()
