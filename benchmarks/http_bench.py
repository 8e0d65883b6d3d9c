"""HTTP load on the interface server alone, next to Daphne 1.4.2, with ``wrk``.

Each stack (interface server + ``echo_app.py`` answering 200 "OK" straight
from the layer) is started fresh for each run; runs alternate between the
stacks so machine noise hits both alike. Prints every run, the medians, and
the ratios ours/Daphne::

    python benchmarks/http_bench.py --runs 3 --duration 10 --connections 50
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time

from stacks import Bench, median

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    """Return requests/s, p50/p99 latency (ms) and error counts from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        percentiles[pct] = float(value) * _UNITS[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": rps,
        "p50_ms": percentiles.get("50", float("nan")),
        "p99_ms": percentiles.get("99", float("nan")),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def wrk(port: int, duration: float, connections: int, threads: int) -> dict:
    url = f"http://127.0.0.1:{port}/"
    # A short warm-up, so connection setup and first-use costs are not measured.
    subprocess.run(["wrk", "-t1", "-c10", "-d1s", url], capture_output=True, check=False)
    run = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency", url],
                         capture_output=True, text=True, check=True)
    return parse_wrk(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description="wrk against the interface server and Daphne 1.4.2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stacks", default="ours,daphne")
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = parser.parse_args()
    kinds = args.stacks.split(",")
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with Bench() as bench:
        for run in range(args.runs):
            for kind in kinds:
                with bench.stack(kind) as stack:
                    result = wrk(stack.port, args.duration, args.connections, args.threads)
                results[kind].append(result)
                print(f"run {run + 1} {kind:7s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                      f"p99 {result['p99_ms']:7.2f} ms  non-2xx {result['non_2xx']}  errors {result['socket_errors']}",
                      flush=True)
                time.sleep(0.5)  # let the stopped stack's sockets drain
    summary = {kind: {key: median([r[key] for r in runs]) for key in ("rps", "p50_ms", "p99_ms")}
               for kind, runs in results.items()}
    print(f"\nH1-IS: wrk -t{args.threads} -c{args.connections}, {args.duration:.0f}s x {args.runs} runs, medians")
    for kind, values in summary.items():
        print(f"  {kind:7s} {values['rps']:8.0f} req/s  p50 {values['p50_ms']:7.2f} ms  p99 {values['p99_ms']:7.2f} ms")
    if "ours" in summary and "daphne" in summary:
        ours, old = summary["ours"], summary["daphne"]
        print(f"  ratio of medians   {ours['rps'] / old['rps']:.2f}x req/s, p99 {ours['p99_ms'] / old['p99_ms']:.2f}x of Daphne's")
        pairs = list(zip(results["ours"], results["daphne"]))
        print(f"  median per-run ratio {median([a['rps'] / b['rps'] for a, b in pairs]):.2f}x req/s, "
              f"p99 {median([a['p99_ms'] / b['p99_ms'] for a, b in pairs]):.2f}x")
    if args.json:
        print(json.dumps({"runs": results, "medians": summary}))


if __name__ == "__main__":
    main()
