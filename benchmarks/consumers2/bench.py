"""Channels 2-4 consumers: this project's workers against Channels 4 + Daphne 4 (in-process), side by side.

Both stacks run the *same* Django project and classes: the peer benchmark
project (``/work/shared/peers/bench/djproj``, its ``benchproj.asgi_ch4``
application and ``consumers_ch4`` consumers, ``channels_redis`` settings):

* **ours**: ``interface-server benchproj.asgi_ch4:application`` + N
  ``manage.py runworker`` on a redis-server of its own (settings:
  ``bench_settings.py`` beside this file, which only drops ``"daphne"`` from
  ``INSTALLED_APPS``);
* **ch4**: ``daphne benchproj.asgi_ch4:application`` from the Channels 4
  virtualenv (``setup_venvs.sh ch4``) on another redis-server.

Workloads, with the peers' load client (``client/wsbench.py``, its own
virtualenv): **W1** echo, 100 clients each sending and awaiting its echo,
on ``/ws/echo/`` (``WebsocketConsumer``) and ``/ws/aecho/``
(``AsyncWebsocketConsumer``): round trips/s, p50/p99 and the CPU every
process of the stack spent per round trip (Redis apart); **W2** broadcast
to 500 members of one group (``/ws/group/``, ``/ws/agroup/``): time until
every member has it, p50. Runs alternate between the stacks::

    python3 benchmarks/consumers2/bench.py [--runs 2] [--duration 8] [--workers 2] [--workloads W1,W2]

Prints a Markdown table (medians over the runs); ``--json FILE`` keeps the raw runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PEERS = Path(os.environ.get("PEERS_BENCH", "/work/shared/peers/bench"))
DJPROJ = PEERS / "djproj"
CLIENT = PEERS / "client" / "wsbench.py"

sys.path.insert(0, str(REPO / "benchmarks"))
from stacks import free_port, stop_process_groups
from stacks import wait_listening as wait_port

PATHS = {"W1": {"sync": "/ws/echo/", "async": "/ws/aecho/"}, "W2": {"sync": "/ws/group/", "async": "/ws/agroup/"}}


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


class Stack:
    """A running stack: its processes (ended by PID) and its port."""

    def __init__(self, name: str, logdir: Path) -> None:
        self.name = name
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []
        self.port = free_port()

    def start(self, args: list[str], env: dict[str, str], log: str, cwd: Path = DJPROJ) -> subprocess.Popen:
        with open(self.logdir / log, "wb") as out:
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs[1:]]  # the first is its redis-server

    def stop(self) -> None:
        stop_process_groups(list(reversed(self.procs)))


def base_env(redis_port: int, capacity: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))}
    env.update(BENCH_STACK="ch4", BENCH_REDIS_PORT=str(redis_port), BENCH_CHANNEL_CAPACITY=str(capacity),
               PYTHONWARNINGS="ignore", PYTHONDONTWRITEBYTECODE="1")
    return env


def start_redis(stack: Stack) -> int:
    port = free_port()
    stack.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                os.environ.copy(), "redis.log")
    wait_port(port)
    return port


def start_ours(logdir: Path, workers: int, capacity: int) -> Stack:
    stack = Stack("ours", logdir)
    env = base_env(start_redis(stack), capacity)
    env.update(DJANGO_SETTINGS_MODULE="bench_settings", BENCH_SQLITE=str(logdir / "ours.sqlite3"),
               PYTHONPATH=os.pathsep.join([str(HERE), str(DJPROJ), str(REPO)]))
    stack.start([sys.executable, "-m", "interface_server", "-b", "127.0.0.1", "-p", str(stack.port),
                 "benchproj.asgi_ch4:application"], env, "ours-server.log")
    for n in range(workers):
        stack.start([sys.executable, "manage.py", "runworker"], env, f"ours-worker{n}.log")
    wait_port(stack.port)
    time.sleep(2)  # the workers' start-up (Django, routing)
    return stack


def start_ch4(logdir: Path, venv: Path, capacity: int) -> Stack:
    stack = Stack("ch4", logdir)
    env = base_env(start_redis(stack), capacity)
    env.update(DJANGO_SETTINGS_MODULE="benchproj.settings", BENCH_SQLITE=str(logdir / "ch4.sqlite3"))
    stack.start([str(venv / "bin" / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(stack.port),
                 "benchproj.asgi_ch4:application"], env, "ch4-daphne.log")
    wait_port(stack.port)
    time.sleep(1)
    return stack


def run_client(client_python: Path, args: list[str], out: Path) -> dict:
    subprocess.run([str(client_python), str(CLIENT), *args, "--json", str(out)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, check=False)
    return json.loads(out.read_text())


def measure(stack: Stack, workload: str, style: str, opts: argparse.Namespace, tmp: Path) -> dict:
    url = f"ws://127.0.0.1:{stack.port}{PATHS[workload][style]}"
    before = sum(cpu_ticks(pid) for pid in stack.pids)
    if workload == "W1":
        record = run_client(opts.client_python, ["echo", "--url", url, "--clients", str(opts.clients),
                                                 "--messages", "100000", "--duration", str(opts.duration)],
                            tmp / "w1.json")
        after = sum(cpu_ticks(pid) for pid in stack.pids)
        trips = max(1, record["round_trips"])
        tick = os.sysconf("SC_CLK_TCK")
        return {"rt_per_s": record["rt_per_s"], "p50_ms": record["latency"]["p50_ms"],
                "p99_ms": record["latency"]["p99_ms"], "lost": record["lost"] + record["out_of_order"],
                "cpu_us_per_rt": (after - before) / tick * 1e6 / trips}
    record = run_client(opts.client_python, ["broadcast", "--url", url, "--clients", str(opts.members),
                                             "--broadcasts", str(opts.broadcasts), "--interval", "0.25",
                                             "--duration", "30"], tmp / "w2.json")
    summary = record["time_to_all_received"]
    return {"all_p50_ms": summary.get("p50_ms"), "all_max_ms": summary.get("max_ms"),
            "lost": record["lost_deliveries"], "complete": record["complete_broadcasts"]}


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of W1 load per run")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--broadcasts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="runworker processes of ours")
    parser.add_argument("--capacity", type=int, default=5000, help="channel capacity (both stacks)")
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--ch4-venv", type=Path, default=Path("/tmp/bench-ch4"))
    parser.add_argument("--client-python", type=Path, default=Path("/tmp/bench-client/bin/python"))
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="consumers2-bench-"))
    stacks = [start_ours(tmp, opts.workers, opts.capacity), start_ch4(tmp, opts.ch4_venv, opts.capacity)]
    results: list[dict] = []
    try:
        for run in range(opts.runs):
            for workload in opts.workloads.split(","):
                for style in ("sync", "async"):
                    order = stacks if run % 2 == 0 else stacks[::-1]
                    for stack in order:
                        row = {"run": run, "stack": stack.name, "workload": workload, "style": style,
                               **measure(stack, workload, style, opts, tmp)}
                        results.append(row)
                        print(json.dumps(row), flush=True)
    finally:
        for stack in stacks:
            stack.stop()
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))
    print(f"\nlogs in {tmp}\n")
    print("| workload | consumer | stack | rt/s | p50 ms | p99 ms | CPU µs/rt (Redis apart) | all got it p50 ms | lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for workload in opts.workloads.split(","):
        for style in ("sync", "async"):
            for name in ("ours", "ch4"):
                rows = [r for r in results if (r["stack"], r["workload"], r["style"]) == (name, workload, style)]
                if not rows:
                    continue

                def col(key: str, rows: list[dict] = rows) -> str:
                    value = median([r.get(key) for r in rows])
                    return "" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"

                lost = sum(r["lost"] for r in rows)
                print(f"| {workload} | {style} | {name} | {col('rt_per_s')} | {col('p50_ms')} | {col('p99_ms')} | "
                      f"{col('cpu_us_per_rt')} | {col('all_p50_ms')} | {lost} |")


if __name__ == "__main__":
    main()
