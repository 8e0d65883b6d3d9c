"""W2 group broadcast, side by side: this project vs Channels 1.1.8 + Daphne 1.4.2 + asgi_redis 1.4.3.

Each stack serves ``fullstack_project/`` (interface server + a fresh
redis-server + one worker, started by ``fullstack.Stack``). 500 WebSocket
clients (one asyncio process, the standard-library client of ``ws_bench``)
connect to ``/bench/``, whose ``websocket.connect`` consumer adds the reply
channel to group ``bench`` before accepting. Then, ``--broadcasts`` times,
the script stamps the clock and requests ``/broadcast/?stamp=N``, a view
doing ``Group("bench").send({"text": N})``, and records when each client
got ``N``. Per broadcast: first arrival, p50/p99/max of the clients' arrival times, how
many got it and how many did not (lost).

A broadcast's window closes when every client got it, when nothing arrived
for ``--quiet`` seconds, or after ``--window`` seconds; later arrivals count
as lost. One warm-up broadcast precedes the measured ones.

Stacks (runs rotate through them, so machine load hits all alike):

* ``ours``: ``python -m interface_server`` + ``manage.py runworker``, layer
  defaults (capacity 100; each interface server's process-specific reply
  prefix holds ``process_capacity``, 10,000);
* ``ch1-100``: the Channels 1.1.8 stack at its default capacity, 100;
* ``ch1-5000``: the same at capacity 5,000.

Usage::

    python benchmarks/broadcast.py [--runs 3] [--clients 500] [--broadcasts 10]

With ``--clients 10000`` it measures the Hashrocket shootout's figure (p95
until all have it) for one interface server process; the script raises its
``RLIMIT_NOFILE`` for the stacks it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fullstack import REPO, Stack, old_stack_shim  # noqa: E402
from idle import raise_nofile  # noqa: E402
from ws_bench import handshake, percentile, read_message  # noqa: E402

STACK_NAMES = ("ours", "ch1-100", "ch1-5000")


def make_stacks(old_venv: str, logdir: Path) -> dict[str, Stack]:
    """The three configurations measured, by name (see the module docstring)."""
    old_python, daphne, shim = f"{old_venv}/bin/python", [f"{old_venv}/bin/daphne"], old_stack_shim(logdir)
    return {
        "ours": Stack("ours", sys.executable, [sys.executable, "-m", "interface_server"], 1, str(REPO),
                      env={"BENCH_CAPACITY": "default"}),
        "ch1-100": Stack("ch1-100", old_python, daphne, 1, shim, env={"BENCH_CAPACITY": "default"}),
        "ch1-5000": Stack("ch1-5000", old_python, daphne, 1, shim, env={"BENCH_CAPACITY": "5000"}),
    }


class Members:
    """The connected clients and, per stamp, when each client received it."""

    def __init__(self) -> None:
        self.arrivals: dict[int, dict[int, float]] = {}
        self.open = 0
        self.failed = 0
        self.progress = asyncio.Event()

    async def listen(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Record each stamp's arrival at client ``index`` until the connection ends (``join`` counted it open)."""
        try:
            while True:
                payload = await read_message(reader, writer)
                if payload is None:
                    return
                now = time.perf_counter()
                self.arrivals.setdefault(int(payload), {}).setdefault(index, now)
                self.progress.set()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            self.open -= 1
            writer.close()


async def join(members: Members, index: int, host: str, port: int, gate: asyncio.Semaphore,
               tasks: list[asyncio.Task]) -> None:
    """Connect client ``index`` to ``/bench/`` (at most ``gate`` handshakes at once) and start its listener."""
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(handshake(host, port, "/bench/"), 15)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            members.failed += 1
            return
    members.open += 1
    tasks.append(asyncio.create_task(members.listen(index, reader, writer)))


async def trigger(host: str, port: int, stamp: int) -> None:
    """GET /broadcast/?stamp=N and wait for the whole response (Connection: close)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /broadcast/?stamp={stamp} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    if not response.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"broadcast trigger failed: {response[:200]!r}")


async def broadcast_once(members: Members, host: str, port: int, stamp: int, window: float, quiet: float) -> dict:
    """Trigger broadcast ``stamp``; return arrival figures (ms since the trigger) once its window closes."""
    expected = members.open
    members.progress.clear()
    started = time.perf_counter()
    await trigger(host, port, stamp)
    got = members.arrivals.setdefault(stamp, {})
    last = time.perf_counter()
    while len(got) < expected:
        now = time.perf_counter()
        remaining = min(started + window - now, last + quiet - now)
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(members.progress.wait(), remaining)
        except asyncio.TimeoutError:
            break
        members.progress.clear()
        last = time.perf_counter()
    times = [(t - started) * 1000 for t in got.values()]
    return {"expected": expected, "got": len(times), "lost": expected - len(times),
            "first": min(times, default=float("nan")), "p50": percentile(times, 0.50),
            "p95": percentile(times, 0.95),
            "p99": percentile(times, 0.99), "max": max(times, default=float("nan"))}


async def session(port: int, clients: int, broadcasts: int, in_flight: int, window: float, quiet: float,
                  pause: float, on_measuring: Callable[[], object] | None = None) -> dict:
    """Connect ``clients`` members, run a warm-up and ``broadcasts`` measured broadcasts; return the run's figures.

    ``on_measuring``, if given, is called after the warm-up, before the first measured broadcast.
    """
    host = "127.0.0.1"
    members = Members()
    tasks: list[asyncio.Task] = []
    gate = asyncio.Semaphore(in_flight)
    await asyncio.gather(*(join(members, i, host, port, gate, tasks) for i in range(clients)))
    connected = members.open
    try:
        await broadcast_once(members, host, port, 0, window, quiet)  # warm-up, not counted
        if on_measuring is not None:
            on_measuring()
        rows = []
        for stamp in range(1, broadcasts + 1):
            await asyncio.sleep(pause)  # pacing between broadcasts, not synchronisation
            rows.append(await broadcast_once(members, host, port, stamp, window, quiet))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    expected = sum(r["expected"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    return {"connected": connected, "failed": members.failed, "lost": lost,
            "lost_pct": 100 * lost / expected if expected else float("nan"),
            **{key: statistics.median(r[key] for r in rows) for key in ("first", "p50", "p95", "p99", "max")},
            "worst": max(r["max"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per stack, rotated between stacks")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--broadcasts", type=int, default=10, help="measured broadcasts per run")
    parser.add_argument("--in-flight", type=int, default=50, help="handshakes in flight while connecting")
    parser.add_argument("--window", type=float, default=5.0, help="longest wait for one broadcast, s")
    parser.add_argument("--quiet", type=float, default=1.0,
                        help="a broadcast ends after this long without arrivals, s")
    parser.add_argument("--pause", type=float, default=0.3, help="gap between broadcasts, s")
    parser.add_argument("--stacks", default=",".join(STACK_NAMES))
    parser.add_argument("--old-venv", default="/tmp/channels1-venv")
    args = parser.parse_args()

    raise_nofile(args.clients + 1000)  # the stacks inherit it: the server holds every client's socket
    logdir = Path(tempfile.mkdtemp(prefix="broadcast-bench-"))
    all_stacks = make_stacks(args.old_venv, logdir)
    names = args.stacks.split(",")
    unknown = set(names) - set(all_stacks)
    if unknown:
        parser.error(f"unknown stacks {sorted(unknown)}; choose from {list(all_stacks)}")
    results: dict[str, list[dict]] = {name: [] for name in names}
    for run_no in range(args.runs):
        order = names[run_no % len(names):] + names[:run_no % len(names)]
        for name in order:
            stack = all_stacks[name]
            port = stack.start(logdir)
            try:
                row = asyncio.run(session(port, args.clients, args.broadcasts, args.in_flight, args.window,
                                          args.quiet, args.pause))
            finally:
                stack.stop()
            results[name].append(row)
            print(f"run {run_no + 1} {name:8s} connected {row['connected']:4d} failed {row['failed']:3d} | "
                  f"per broadcast (median of {args.broadcasts}): first {row['first']:6.1f} p50 {row['p50']:7.1f} "
                  f"p95 {row['p95']:7.1f} "
                  f"p99 {row['p99']:7.1f} max {row['max']:7.1f} ms (worst {row['worst']:7.1f}) | lost {row['lost']} "
                  f"({row['lost_pct']:.1f} %)", flush=True)

    print(f"\nW2: {args.clients} clients in one group, {args.broadcasts} broadcasts x {args.runs} runs; "
          f"medians over runs of per-run medians (ms from trigger to arrival)")
    print(f"{'':9s} {'first':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'max':>7s} {'lost %':>7s} {'failed':>6s}")
    med = {}
    for name, rows in results.items():
        med[name] = values = {key: statistics.median(r[key] for r in rows)
                              for key in ("first", "p50", "p95", "p99", "max", "lost_pct")}
        print(f"{name:9s} {values['first']:7.1f} {values['p50']:7.1f} {values['p95']:7.1f} {values['p99']:7.1f} "
              f"{values['max']:7.1f} "
              f"{values['lost_pct']:7.1f} {sum(r['failed'] for r in rows):6d}")
    if "ours" in results:
        for other in (n for n in names if n != "ours"):
            pairs = list(zip(results["ours"], results[other]))
            ratio = {key: med["ours"][key] / med[other][key] for key in ("p50", "p99", "max")}
            per_run = {key: statistics.median(a[key] / b[key] for a, b in pairs) for key in ("p50", "p99", "max")}
            print(f"ours / {other}: ratio of medians p50 {ratio['p50']:.2f}x p99 {ratio['p99']:.2f}x "
                  f"max {ratio['max']:.2f}x; median per-run ratio p50 {per_run['p50']:.2f}x "
                  f"p99 {per_run['p99']:.2f}x max {per_run['max']:.2f}x")
    print(f"logs in {logdir}")


if __name__ == "__main__":
    main()
