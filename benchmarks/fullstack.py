"""Full stack, side by side: this project vs Channels 1.1.8 + Daphne 1.4.2 + asgi_redis 1.4.3.

Both stacks serve the same Django project (``fullstack_project/``: a view
returning ``OK`` with no middleware, and a WebSocket echo consumer) through
interface server + Redis + ONE worker process. Runs are interleaved (the
order flips every round) and each round starts a fresh redis-server, so
machine noise hits both alike. Reported: medians over rounds, and ratios.

Both interface servers listen with a backlog of 1024 (see ``Stack.start``).

* H1: ``wrk -t1 -c50`` against ``/`` -- requests/s, p50/p99 latency.
* W1: ``ws_bench.py`` -- 100 clients, send/await echo/repeat -- round trips/s,
  p50/p99, lost and out-of-order echoes.

Usage::

    python benchmarks/fullstack.py [--rounds 3] [--duration 8] [--threads 1]
        [--old-venv /tmp/channels1-venv]

The old stack's virtualenv comes from ``bash benchmarks/old_stack.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROJECT = HERE / "fullstack_project"
sys.path.insert(0, str(REPO))

from stacks import stop_process_groups  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402


class Stack:
    """One deployment: interface server + one worker process on a fresh Redis."""

    def __init__(self, name: str, python: str, server_cmd: list[str], threads: int, extra_path: str = "",
                 worker_options: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 workers: int = 1) -> None:
        self.name = name
        self.workers = workers
        self.env = env or {}
        self.worker_options = worker_options
        self.python = python
        self.server_cmd = server_cmd
        self.threads = threads
        self.extra_path = extra_path
        self.procs: list[subprocess.Popen] = []

    def start(self, logdir: Path) -> int:
        self.redis = RedisServer().start()
        self.port = free_port()
        env = dict(os.environ, **self.env, BENCH_REDIS_PORT=str(self.redis.port),
                   DJANGO_SETTINGS_MODULE="benchproj.settings",
                   PYTHONPATH=os.pathsep.join(p for p in (self.extra_path, str(PROJECT)) if p))
        # A listen backlog of 1024 for both servers: with Twisted's default
        # (50) a loaded machine drops some of wrk's 50 simultaneous SYNs, and
        # the 1 s SYN retransmission then lands in both stacks' p99.
        endpoint = f"tcp:port={self.port}:interface=127.0.0.1:backlog=1024"
        server = [*self.server_cmd, "-e", endpoint, "benchproj.asgi:channel_layer"]
        worker = [self.python, "manage.py", "runworker", "--threads", str(self.threads), *self.worker_options]
        for label, cmd in (("server", server), *((f"worker{i}", worker) for i in range(self.workers))):
            log = open(logdir / f"{self.name}-{label}.log", "wb")
            self.procs.append(subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        self._wait_ready()
        return self.port

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.name}: {proc.args} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as response:
                    if response.read() == b"OK":
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout}s")

    def cpu(self) -> float:
        """CPU seconds used so far by the interface server, the worker and redis-server together."""
        return sum(self.cpu_split().values())

    def cpu_split(self) -> dict[str, float]:
        """CPU seconds used so far by the interface server, the workers (together) and redis-server."""
        return {"server": cpu_seconds(self.procs[0].pid),
                "worker": sum(cpu_seconds(proc.pid) for proc in self.procs[1:]),
                "redis": cpu_seconds(self.redis.process.pid)}

    def stop(self) -> None:
        stop_process_groups(self.procs)
        self.procs = []
        self.redis.cleanup()


def old_stack_shim(logdir: Path) -> str:
    """Make (once) and return a ``PYTHONPATH`` entry the Channels 1.1.8 stack needs.

    asgi_ipc 1.4.2 in the old venv cannot import (its msgpack-python
    requirement is gone) and Channels 1.1.8 imports it at start-up for a
    version check; a stub with just ``__version__`` satisfies that check.
    """
    shim = logdir / "shim" / "asgi_ipc"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text('__version__ = "1.4.2"\n')
    return str(shim.parent)


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by every thread of ``pid``."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(port: int, duration: float, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "p50_ms": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
              "p99_ms": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))}
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")
    return result


def run_ws(port: int, duration: float, clients: int) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "ws_bench.py"), f"ws://127.0.0.1:{port}/echo/",
                          "--clients", str(clients), "--duration", str(duration), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="worker threads, both stacks")
    parser.add_argument("--prefetch", type=int, default=1, help="our runworker's --prefetch (Channels 1 has none)")
    parser.add_argument("--old-venv", default="/tmp/channels1-venv")
    args = parser.parse_args()

    logdir = Path(tempfile.mkdtemp(prefix="fullstack-bench-"))
    old_python = f"{args.old_venv}/bin/python"
    stacks = {
        "channels1": Stack("channels1", old_python, [f"{args.old_venv}/bin/daphne"], args.threads,
                           old_stack_shim(logdir)),
        "ours": Stack("ours", sys.executable, [sys.executable, "-m", "interface_server"], args.threads, str(REPO),
                      ("--prefetch", str(args.prefetch))),
    }
    results: dict[str, dict[str, list]] = {name: {} for name in stacks}
    for round_no in range(args.rounds):
        order = list(stacks) if round_no % 2 == 0 else list(reversed(stacks))
        for name in order:
            stack = stacks[name]
            port = stack.start(logdir)
            try:
                run_wrk(port, 2, args.connections)  # warm-up
                before = stack.cpu()
                http = run_wrk(port, args.duration, args.connections)
                middle = stack.cpu()
                ws = run_ws(port, args.duration, args.clients)
                after = stack.cpu()
            finally:
                stack.stop()
            row = {"rps": http["requests_per_s"], "http_p50": http["p50_ms"], "http_p99": http["p99_ms"],
                   "rts": ws["round_trips_per_s"], "ws_p50": ws["p50_ms"], "ws_p99": ws["p99_ms"],
                   "ws_lost": ws["lost"], "ws_ooo": ws["out_of_order"],
                   # CPU of server + worker + redis per request / round trip: less noisy than rates
                   "http_cpu_us": (middle - before) / max(1, http["requests_per_s"] * args.duration) * 1e6,
                   "ws_cpu_us": (after - middle) / max(1, ws["round_trips"]) * 1e6}
            for key, value in row.items():
                results[name].setdefault(key, []).append(value)
            print(f"round {round_no + 1} {name:9s} H1 {http['requests_per_s']:7.0f} req/s p50 {http['p50_ms']:6.1f} "
                  f"p99 {http['p99_ms']:6.1f} ms{(' ' + http['errors']) if http['errors'] else ''} | "
                  f"W1 {ws['round_trips_per_s']:7.0f} rt/s p50 {ws['p50_ms']:6.1f} p99 {ws['p99_ms']:6.1f} ms "
                  f"lost {ws['lost']} ooo {ws['out_of_order']} | CPU/req {row['http_cpu_us']:.0f} us, "
                  f"/rt {row['ws_cpu_us']:.0f} us", flush=True)
    med = {name: {key: statistics.median(values) for key, values in rows.items()} for name, rows in results.items()}
    old, new = med["channels1"], med["ours"]
    print(f"\nmedians of {args.rounds} interleaved rounds, {args.duration:.0f}s each, worker threads {args.threads}, "
          f"our prefetch {args.prefetch}")
    print(f"{'':10s} {'H1 req/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'W1 rt/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s}")
    for name, row in (("channels1", old), ("ours", new)):
        print(f"{name:10s} {row['rps']:9.0f} {row['http_p50']:7.1f} {row['http_p99']:7.1f} "
              f"{row['rts']:8.0f} {row['ws_p50']:7.1f} {row['ws_p99']:7.1f}")
    print(f"{'ratio':10s} {new['rps'] / old['rps']:8.2f}x {new['http_p50'] / old['http_p50']:6.2f}x "
          f"{new['http_p99'] / old['http_p99']:6.2f}x {new['rts'] / old['rts']:7.2f}x "
          f"{new['ws_p50'] / old['ws_p50']:6.2f}x {new['ws_p99'] / old['ws_p99']:6.2f}x")
    # Each round ran both stacks back to back, so a round's ratio compares
    # them under (nearly) the same machine load.
    per_round = {key: statistics.median(n / o for n, o in zip(results["ours"][key], results["channels1"][key]))
                 for key in ("rps", "http_p50", "http_p99", "rts", "ws_p50", "ws_p99")}
    print(f"{'per-round':10s} {per_round['rps']:8.2f}x {per_round['http_p50']:6.2f}x {per_round['http_p99']:6.2f}x "
          f"{per_round['rts']:7.2f}x {per_round['ws_p50']:6.2f}x {per_round['ws_p99']:6.2f}x  (median of per-round ratios)")
    print(f"CPU (server+worker+redis) per HTTP request: channels1 {old['http_cpu_us']:.0f} us, "
          f"ours {new['http_cpu_us']:.0f} us ({old['http_cpu_us'] / new['http_cpu_us']:.2f}x less); "
          f"per WebSocket round trip: channels1 {old['ws_cpu_us']:.0f} us, ours {new['ws_cpu_us']:.0f} us "
          f"({old['ws_cpu_us'] / new['ws_cpu_us']:.2f}x less)")
    print(f"logs in {logdir}")


if __name__ == "__main__":
    main()
