"""Before/after: two checkouts of this project, full stack, interleaved, CPU split by process.

Each *tree* is a checkout of this project (``before=/tmp/perf-before``,
``after=.``), run with this Python, the tree first on ``PYTHONPATH``, or
with another (``before=/tmp/perf-before@/tmp/base-venv/bin/python``: a
virtualenv with other dependencies, e.g. without hiredis).
Every measurement starts a fresh stack from ``fullstack_project/``
(interface server + N ``runworker`` processes + a fresh redis-server,
``fullstack.Stack``); rounds alternate the order of the trees, so machine
load hits both alike. Workloads:

* ``H1-1w``, ``H1-2w``: ``wrk -t1 -c50`` on ``/`` (a view returning ``OK``)
  with 1 or 2 workers: requests/s, p99;
* ``W1-1w``, ``W1-2w``: ``ws_bench.py``, 100 clients echoing on
  ``/echo/``: round trips/s, p99, lost and out of order;
* ``W2``: ``broadcast.py``'s session, 500 members (``W2-10000``: 10,000),
  layer defaults: per broadcast the p50, p95 and max arrival time (ms;
  the table's p99 column holds the max), lost.

For each, the CPU seconds of the interface server, the workers (summed) and
redis-server over the measurement (from ``/proc``), per request, round trip
or broadcast: steadier than the rates on a shared machine. Printed: medians
over rounds, and the median of per-round ratios of each tree to the first.

Usage::

    python benchmarks/ab.py before=/tmp/perf-before[@PYTHON] after=. [--rounds 3] [--duration 8]
        [--workloads H1-1w,H1-2w,W1-1w,W1-2w,W2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from broadcast import session  # noqa: E402
from fullstack import Stack, run_wrk, run_ws  # noqa: E402
from idle import raise_nofile  # noqa: E402

WORKLOADS = ("H1-1w", "H1-2w", "W1-1w", "W1-2w", "W2")


def measure(tree: str, workload: str, args: argparse.Namespace, logdir: Path, server_args: tuple[str, ...] = ()) -> dict:
    """Start a fresh stack of ``tree`` for ``workload``, load it, stop it; return the figures."""
    kind, _, workers = workload.partition("-")
    members = args.members
    if kind == "W2":  # W2-10000: that many members
        members, workers = int(workers or members), "1w"
    tree, _, python = tree.partition("@")
    python = python or sys.executable
    env = {"BENCH_CAPACITY": "default"} if kind == "W2" else {}
    stack = Stack(Path(tree).name or "tree", python, [python, "-m", "interface_server", *server_args], 1,
                  str(Path(tree).resolve()), ("--prefetch", str(args.prefetch)), env=env,
                  workers=int(workers.rstrip("w") or 1))
    port = stack.start(logdir)
    try:
        if kind == "H1":
            run_wrk(port, 2, args.connections)  # warm-up
            before = stack.cpu_split()
            result = run_wrk(port, args.duration, args.connections)
            after = stack.cpu_split()
            count = result["requests_per_s"] * args.duration
            row = {"rate": result["requests_per_s"], "p99": result["p99_ms"]}
        elif kind == "W1":
            before = stack.cpu_split()
            result = run_ws(port, args.duration, args.clients)
            after = stack.cpu_split()
            count = result["round_trips"]
            row = {"rate": result["round_trips_per_s"], "p99": result["p99_ms"],
                   "lost": result["lost"] + result["out_of_order"]}
        else:
            marks: list[dict[str, float]] = []
            result = asyncio.run(session(port, members, args.broadcasts, 50, 5.0, 1.0, 0.3,
                                         on_measuring=lambda: marks.append(stack.cpu_split())))
            before, after = marks[0], stack.cpu_split()
            count = args.broadcasts  # CPU per broadcast (the idle pauses between them cost next to nothing)
            row = {"p50": result["p50"], "p95": result["p95"], "p99": result["max"],
                   "lost": result["lost"] + result["failed"]}
    finally:
        stack.stop()
    for name in before:
        row[f"cpu_{name}"] = (after[name] - before[name]) / max(1.0, count) * 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="+", help="name=path of a checkout; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--broadcasts", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=1)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--server-args", action="append", default=[], metavar="NAME=ARGS",
                        help="extra interface server options for one tree, e.g. 'after=--sender-threads 1'")
    args = parser.parse_args()
    trees = dict(tree.split("=", 1) for tree in args.trees)
    extra = {name: tuple(value.split()) for name, value in (item.split("=", 1) for item in args.server_args)}
    workloads = args.workloads.split(",")
    raise_nofile(max([args.members] + [int(w.split("-")[1]) for w in workloads if w.startswith("W2-")]) + 1000)
    logdir = Path(tempfile.mkdtemp(prefix="ab-bench-"))
    results: dict[tuple[str, str], list[dict]] = {}
    for round_no in range(args.rounds):
        names = list(trees) if round_no % 2 == 0 else list(reversed(trees))
        for workload in workloads:
            for name in names:
                row = measure(trees[name], workload, args, logdir, extra.get(name, ()))
                results.setdefault((workload, name), []).append(row)
                print(f"round {round_no + 1} {workload:6s} {name:8s} " +
                      " ".join(f"{key} {value:.1f}" for key, value in row.items()), flush=True)
    base = next(iter(trees))
    print(f"\nmedians of {args.rounds} rounds ({args.duration}s each); CPU in us per request / round trip "
          f"(W2: per broadcast); x = median of per-round ratios to {base}")
    print(f"{'workload':7s} {'tree':8s} {'rate':>8s} {'p50':>6s} {'p99':>7s} {'server':>7s} {'worker':>7s} "
          f"{'redis':>7s} {'total':>7s} {'lost':>5s}  ratios")
    for workload in workloads:
        for name in trees:
            rows = results[(workload, name)]
            med = {key: statistics.median(row.get(key, 0) for row in rows) for key in rows[0]}
            med["cpu_total"] = statistics.median(row["cpu_server"] + row["cpu_worker"] + row["cpu_redis"]
                                                 for row in rows)
            ratios = ""
            if name != base:
                pairs = list(zip(rows, results[(workload, base)]))
                keys = ["rate", "p99"] if "rate" in rows[0] else ["p50", "p95", "p99"]
                ratios = " ".join(f"{key} {statistics.median(a[key] / b[key] for a, b in pairs):.2f}x"
                                  for key in keys)
                total = statistics.median((a["cpu_server"] + a["cpu_worker"] + a["cpu_redis"]) /
                                          (b["cpu_server"] + b["cpu_worker"] + b["cpu_redis"]) for a, b in pairs)
                ratios += f" cpu {total:.2f}x"
            print(f"{workload:7s} {name:8s} {med.get('rate', 0):8.0f} {med.get('p50', 0):6.1f} {med['p99']:7.1f} "
                  f"{med['cpu_server']:7.0f} {med['cpu_worker']:7.0f} {med['cpu_redis']:7.0f} "
                  f"{med['cpu_total']:7.0f} {sum(row.get('lost', 0) for row in rows):5.0f}  {ratios}"
                  + (f"  (p95 {med['p95']:.1f} ms)" if "p95" in med else ""))
    print(f"logs in {logdir}")


if __name__ == "__main__":
    main()
