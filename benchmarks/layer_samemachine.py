"""Benchmark: the same-machine SQLite layer across two processes, beside asgi_ipc 1.4.2 and Redis.

Measures, for each layer, with every measurement in fresh processes:

* round trips/s: one process sends a ~1 KB message to ``bench.ping`` and
  blocks for the answer on ``bench.pong``; another process receives and
  answers. Both sides use the layer's blocking receive.
* wake-up latency: a receiver that has been idle (blocked) for a few ms gets
  a message stamped with ``time.monotonic()`` (one clock for every process on
  Linux); p50/p99 of receive time minus send time.
* idle CPU: CPU seconds a receiver blocked on an empty channel uses over
  ``--idle`` seconds of wall time.

The SQLite layer runs twice: with its directory under the system temporary
directory (a disk-backed file system here) and under ``/dev/shm`` (tmpfs).

asgi_ipc has no blocking receive (``block=True`` returns at once), so it is
run two ways: "spin" (receive in a tight loop: its best throughput, a core
burnt per waiting process) and "worker" (the Channels 1.1.8 worker loop:
sleep 10 ms when nothing came). It runs under ``--ipc-python`` (default
/tmp/channels1-venv/bin/python); its package ``__init__`` asks
``pkg_resources`` for a distribution name that venv lacks, so the child
stubs that lookup before importing it.

Layers are measured interleaved, run after run; medians are reported, with
ratios against asgi_ipc measured in the same run. Usage::

    python3 benchmarks/layer_samemachine.py [--runs 5] [--seconds 2] [--idle 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PAYLOAD = {"type": "bench", "body": b"x" * 900, "path": "/bench/", "headers": [[b"host", b"localhost"]]}


# -- child side: runs under the layer's own Python -------------------------------


def build_layer(spec: dict):
    if spec["kind"] == "asgi_ipc":
        import types

        import pkg_resources

        pkg_resources.require = lambda *names: [types.SimpleNamespace(version="1.4.2")]
        import asgi_ipc

        return asgi_ipc.IPCChannelLayer(**spec["kwargs"])
    sys.path.insert(0, REPO)
    module, _, name = spec["class"].rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)(**spec["kwargs"])


def make_receive(layer, mode: str):
    """A receive that returns only with a message, waiting the way ``mode`` says."""

    def receive(channels):
        while True:
            if mode == "block":
                channel, message = layer.receive(channels, block=True)
            else:
                channel, message = layer.receive(channels, block=False)
                if channel is None and mode == "worker":
                    time.sleep(0.01)
            if channel is not None:
                return channel, message

    return receive


def child(role: str, spec: dict, seconds: float) -> dict:
    layer = build_layer(spec)
    receive = make_receive(layer, spec["mode"])
    if role == "echo":
        while True:
            _, message = receive(["bench.ping"])
            if "t" in message:
                message = {"lat": time.monotonic() - message["t"]}
            layer.send("bench.pong", message)
            if message.get("stop"):
                return {}
    if role == "pingpong":
        count, start = 0, time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            layer.send("bench.ping", PAYLOAD)
            receive(["bench.pong"])
            count += 1
        elapsed = time.perf_counter() - start
        layer.send("bench.ping", {"stop": True})
        receive(["bench.pong"])
        return {"round_trips_per_s": count / elapsed}
    if role == "latency":
        latencies = []
        for _ in range(int(seconds * 150)):
            time.sleep(0.003)  # let the receiver go idle before each message
            layer.send("bench.ping", {"t": time.monotonic()})
            latencies.append(receive(["bench.pong"])[1]["lat"])
        layer.send("bench.ping", {"stop": True})
        receive(["bench.pong"])
        return {"latencies": latencies}
    if role == "idle":
        layer.receive(["bench.idle"], block=False)
        wall, cpu = time.monotonic(), time.process_time()
        while time.monotonic() - wall < seconds:
            channel, _ = layer.receive(["bench.idle"], block=True)
            if channel is None and spec["mode"] == "worker":
                time.sleep(0.01)
        return {"cpu_s": time.process_time() - cpu, "wall_s": time.monotonic() - wall}
    raise ValueError(f"unknown role {role!r}")


# -- parent side ------------------------------------------------------------------


def spawn(python: str, role: str, spec: dict, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [python, os.path.abspath(__file__), "--child", role, json.dumps(spec), str(seconds)],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )


def measure(python: str, role: str, spec: dict, seconds: float) -> dict:
    echo = spawn(python, "echo", spec, seconds) if role != "idle" else None
    driver = spawn(python, role, spec, seconds)
    out, _ = driver.communicate(timeout=seconds * 10 + 60)
    if echo is not None:
        echo.communicate(timeout=30)
    if driver.returncode != 0:
        raise RuntimeError(f"{role} child for {spec} failed with exit code {driver.returncode}")
    return json.loads(out)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def layers(args, directory: str, redis_url: str | None) -> dict[str, tuple[str, dict]]:
    ours = {"kind": "ours", "class": "asgi_backends.sqlite.SQLiteChannelLayer", "mode": "block",
            "kwargs": {"path": directory, "capacity": 1000}}
    found = {"sqlite": (sys.executable, ours)}
    if os.path.isdir("/dev/shm"):  # the same layer with its directory on tmpfs
        in_memory = {**ours, "kwargs": {**ours["kwargs"], "path": os.path.join("/dev/shm", os.path.basename(directory))}}
        found["sqlite-/dev/shm"] = (sys.executable, in_memory)
    if os.path.exists(args.ipc_python):
        prefix = f"bench{os.getpid()}"
        for mode in ("spin", "worker"):
            found[f"asgi_ipc-{mode}"] = (args.ipc_python, {"kind": "asgi_ipc", "mode": mode,
                                                           "kwargs": {"prefix": prefix, "capacity": 1000}})
    if redis_url:
        found["redis"] = (sys.executable, {"kind": "ours", "class": "asgi_backends.redis.RedisChannelLayer",
                                           "mode": "block", "kwargs": {"hosts": [redis_url], "capacity": 1000}})
    return found


def cleanup_ipc(python: str, prefix: str) -> None:
    code = (
        "import posix_ipc\n"
        f"for n in ('/{prefix}-messages', '/{prefix}-groups'):\n"
        "    for f in (posix_ipc.unlink_shared_memory, posix_ipc.unlink_semaphore):\n"
        "        try: f(n)\n"
        "        except posix_ipc.ExistentialError: pass\n"
    )
    subprocess.run([python, "-c", code], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each throughput/latency run")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle-CPU measurement")
    parser.add_argument("--ipc-python", default="/tmp/channels1-venv/bin/python")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="bench-sqlite-")
    redis = None
    try:
        import asgi_backends.redis  # noqa: F401

        if not args.no_redis:
            from tests.support.redis_server import RedisServer

            redis = RedisServer().start()
    except ImportError:
        print("asgi_backends.redis not importable: Redis column skipped")
    try:
        candidates = layers(args, directory, redis.url if redis else None)
        rtps: dict[str, list[float]] = {name: [] for name in candidates}
        p50: dict[str, list[float]] = {name: [] for name in candidates}
        p99: dict[str, list[float]] = {name: [] for name in candidates}
        for run in range(args.runs):
            for name, (python, spec) in candidates.items():
                rtps[name].append(measure(python, "pingpong", spec, args.seconds)["round_trips_per_s"])
                latencies = measure(python, "latency", spec, args.seconds)["latencies"]
                p50[name].append(percentile(latencies, 0.5) * 1000)
                p99[name].append(percentile(latencies, 0.99) * 1000)
            print(f"run {run + 1}: " + ", ".join(f"{n} {rtps[n][-1]:.0f} rt/s" for n in candidates), flush=True)
        print(f"\nmedians of {args.runs} runs, 2 processes, ~1 KB messages")
        print(f"{'layer':<20}{'round trips/s':>14}{'wake p50 ms':>13}{'wake p99 ms':>13}{'idle CPU s':>12}")
        for name, (python, spec) in candidates.items():
            idle = measure(python, "idle", spec, args.idle)
            print(f"{name:<20}{statistics.median(rtps[name]):>14.0f}{statistics.median(p50[name]):>13.3f}"
                  f"{statistics.median(p99[name]):>13.3f}{idle['cpu_s']:>12.4f}  (over {idle['wall_s']:.1f}s)")
        for mine in ("sqlite", "sqlite-/dev/shm"):
            for base in ("asgi_ipc-spin", "asgi_ipc-worker", "redis"):
                if mine in rtps and base in rtps:
                    ratios = [ours / theirs for ours, theirs in zip(rtps[mine], rtps[base])]
                    print(f"{mine} / {base} round trips: median ratio {statistics.median(ratios):.2f}x "
                          f"(per run: {', '.join(f'{r:.2f}' for r in ratios)})")
    finally:
        if redis is not None:
            redis.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(os.path.join("/dev/shm", os.path.basename(directory)), ignore_errors=True)
        if os.path.exists(args.ipc_python):
            cleanup_ipc(args.ipc_python, f"bench{os.getpid()}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4]))))
    else:
        main()
