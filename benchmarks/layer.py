"""Benchmark: the Redis channel layer against raw redis-py on the same server.

One process, ~1 KB msgpack messages, a ``redis-server`` started for the run
(no persistence, loopback). Measured, interleaved run after run:

* ``send+receive``: pairs/s of ``layer.send`` then ``layer.receive(block=True)``;
  the ceiling is raw redis-py ``LPUSH`` then ``BLPOP`` of the same message
  (packed and unpacked with msgpack, as any user of Redis would).
* ``send_group``: ``send_group`` calls/s to a group of 1,000 members (500
  plain channels, 500 process-specific ones on 10 prefixes); messages
  delivered/s is 1,000 times that. Members are drained between batches,
  untimed, so every call really delivers. Also the redis-server CPU time per
  call (steadier than wall time on a busy machine). The ceiling: one
  pipelined round trip of ``RPUSH`` + ``PEXPIRE`` per member.
* wake-up latency: a receiver in a child process blocks in
  ``receive(block=True)``; the parent waits until it is blocked, stamps a
  message with CLOCK_MONOTONIC (one clock for all processes) and sends it;
  p50/p99 of arrival minus stamp. Raw ``BLPOP``/``LPUSH`` is measured alike.
* for reference, asgi_redis 1.4.3's send+receive and send_group (one
  ``send`` per member there), run by the Python of ``--channels1-venv`` in
  a child process against the same server.

Other layers can be added as extra columns: put a factory taking the Redis
URL into :data:`LAYERS`. The same-machine SQLite layer is measured across two
processes, beside asgi_ipc 1.4.2 and this Redis layer, by
``benchmarks/layer_samemachine.py``. Usage::

    python3 benchmarks/layer.py [--runs 5] [--seconds 1.5] [--samples 300] [--encrypted]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import msgpack
import redis

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from asgi_backends.redis import RedisChannelLayer  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

MESSAGE = {"type": "bench", "text": "x" * 900, "path": "/bench/", "headers": [[b"host", b"localhost"]]}
GROUP_SIZE = 1000


def redis_layer(url: str) -> Any:
    return RedisChannelLayer(hosts=[url], prefix="bench:", capacity=1000)


def encrypted_redis_layer(url: str) -> Any:
    return RedisChannelLayer(hosts=[url], prefix="bench:", capacity=1000, symmetric_encryption_keys=["bench"])


LAYERS: dict[str, Callable[[str], Any]] = {"redis layer": redis_layer}
"""Layer columns: name -> factory(redis URL) returning a layer."""


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# -- throughput ---------------------------------------------------------------------


def raw_pairs(url: str, seconds: float) -> float:
    client = redis.Redis.from_url(url)
    pairs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            client.lpush("bench:raw", msgpack.packb(MESSAGE, use_bin_type=True))
            msgpack.unpackb(client.blpop(["bench:raw"], timeout=1)[1], raw=False)
        pairs += 100
    rate = pairs / (time.perf_counter() - start)
    client.close()
    return rate


def layer_pairs(factory: Callable[[str], Any], url: str, seconds: float) -> float:
    layer = factory(url)
    pairs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            layer.send("bench.pairs", MESSAGE)
            layer.receive(["bench.pairs"], block=True)
        pairs += 100
    rate = pairs / (time.perf_counter() - start)
    layer.flush()
    return rate


def _cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"]


def _group_members() -> list[str]:
    """Half plain channels, half process-specific ones on 10 prefixes (10 interface servers)."""
    members = [f"bench.member{i}" for i in range(GROUP_SIZE // 2)]
    return members + [f"bench.ws{i % 10}!client{i}" for i in range(GROUP_SIZE - len(members))]


def _time_group_sends(send: Callable[[], None], url: str, seconds: float) -> tuple[float, float]:
    """Return (calls/s, redis-server CPU ms per call) of ``send``."""
    client = redis.Redis.from_url(url)
    calls, elapsed, cpu = 0, 0.0, 0.0
    while elapsed < seconds:
        cpu_start, start = _cpu_seconds(client), time.perf_counter()
        for _ in range(5):  # 5 x 50 per ws list stays within capacity 1000
            send()
        elapsed += time.perf_counter() - start
        cpu += _cpu_seconds(client) - cpu_start
        calls += 5
        # Drain, untimed, so the next calls deliver instead of dropping.
        client.delete(*[key for key in client.scan_iter(match="bench:bench.*", count=2000)])
    client.close()
    return calls / elapsed, cpu * 1000 / calls


def raw_send_group(url: str, seconds: float) -> tuple[float, float]:
    """The ceiling: one pipelined round trip of RPUSH + PEXPIRE per member."""
    client = redis.Redis.from_url(url)
    keys = ["bench:" + name.split("!")[0] for name in _group_members()]
    payload = msgpack.packb(MESSAGE, use_bin_type=True)

    def send() -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.rpush(key, payload)
            pipe.pexpire(key, 120000)
        pipe.execute()

    result = _time_group_sends(send, url, seconds)
    client.close()
    return result


def layer_send_group(factory: Callable[[str], Any], url: str, seconds: float) -> tuple[float, float]:
    layer = factory(url)
    for name in _group_members():
        layer.group_add("bench-group", name)
    result = _time_group_sends(lambda: layer.send_group("bench-group", MESSAGE), url, seconds)
    layer.flush()
    return result


_ASGI_REDIS_SCRIPT = """
import sys, time, types
import pkg_resources
pkg_resources.require = lambda *names: [types.SimpleNamespace(version="1.4.3")]
from asgi_redis import RedisChannelLayer
mode, url, seconds, size = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
layer = RedisChannelLayer(hosts=[url], prefix="bench1:", capacity=1000)
message = MESSAGE
if mode == "pairs":
    pairs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            layer.send("bench.pairs", message)
            layer.receive(["bench.pairs"], block=True)
        pairs += 100
    print(pairs / (time.perf_counter() - start))
else:
    for i in range(size):
        layer.group_add("bench-group", "bench.member%d" % i)
    calls, elapsed = 0, 0.0
    while elapsed < seconds:
        start = time.perf_counter()
        layer.send_group("bench-group", message)
        elapsed += time.perf_counter() - start
        calls += 1
        layer.flush()
        for i in range(size):
            layer.group_add("bench-group", "bench.member%d" % i)
    print(calls / elapsed)
layer.flush()
"""


def asgi_redis(python: str, mode: str, url: str, seconds: float) -> float | None:
    """asgi_redis 1.4.3's send+receive pairs/s or send_group calls/s, under the historical stack's Python."""
    script = _ASGI_REDIS_SCRIPT.replace("MESSAGE", repr(MESSAGE))
    proc = subprocess.run(
        [python, "-c", script, mode, url, str(seconds), str(GROUP_SIZE)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        print(f"asgi_redis run failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return float(proc.stdout.strip().splitlines()[-1])


# -- wake-up latency ------------------------------------------------------------------


def _receiver(kind: str, url: str, samples: int, conn) -> None:
    """Child: block, receive, report latency, repeat."""
    if kind == "raw":
        client = redis.Redis.from_url(url, socket_timeout=30)
        receive = lambda: msgpack.unpackb(client.blpop(["bench:wake"], timeout=10)[1], raw=False)  # noqa: E731
    else:
        layer = LAYERS[kind](url)
        receive = lambda: layer.receive(["bench.wake"], block=True)[1]  # noqa: E731
    conn.send("ready")
    for _ in range(samples):
        message = receive()
        conn.send(now_ns() - message["t"])


def wakeup(kind: str, url: str, samples: int) -> list[float]:
    """Return wake-up latencies in ms for ``samples`` messages."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_receiver, args=(kind, url, samples, child))
    process.start()
    parent.recv()
    probe = redis.Redis.from_url(url)
    if kind == "raw":
        send = lambda m: probe.lpush("bench:wake", msgpack.packb(m, use_bin_type=True))  # noqa: E731
    else:
        layer = LAYERS[kind](url)
        send = lambda m: layer.send("bench.wake", m)  # noqa: E731
    latencies = []
    for _ in range(samples):
        # Send only once the receiver is parked in BLPOP.
        deadline = time.monotonic() + 10
        while probe.info("clients")["blocked_clients"] < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver never blocked")
            time.sleep(0.0005)
        time.sleep(0.001)  # let Redis and the machine go idle, as a waiting server would be
        send({**MESSAGE, "t": now_ns()})
        latencies.append(parent.recv() / 1e6)
    process.join(10)
    probe.close()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- report ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="length of each throughput measurement")
    parser.add_argument("--samples", type=int, default=300, help="wake-ups per latency measurement")
    parser.add_argument("--channels1-venv", default="/tmp/channels1-venv")
    parser.add_argument("--encrypted", action="store_true", help="also measure the layer with symmetric_encryption_keys")
    args = parser.parse_args()
    if args.encrypted:
        LAYERS["redis layer, encrypted"] = encrypted_redis_layer
    old_python = os.path.join(args.channels1_venv, "bin", "python")
    has_old = os.path.exists(old_python)

    server = RedisServer().start()
    results: dict[str, dict[str, list[float]]] = {}

    def record(measure: str, column: str, value: float | None) -> None:
        if value is not None:
            results.setdefault(measure, {}).setdefault(column, []).append(value)

    try:
        for run in range(args.runs):
            record("send+receive pairs/s", "raw redis-py", raw_pairs(server.url, args.seconds))
            for name, factory in LAYERS.items():
                record("send+receive pairs/s", name, layer_pairs(factory, server.url, args.seconds))
            if has_old:
                record("send+receive pairs/s", "asgi_redis 1.4.3", asgi_redis(old_python, "pairs", server.url, args.seconds))
            group = f"send_group to {GROUP_SIZE} calls/s"
            cpu = f"send_group to {GROUP_SIZE}: redis-server CPU ms/call"
            rate, cost = raw_send_group(server.url, args.seconds)
            record(group, "raw redis-py", rate)
            record(cpu, "raw redis-py", cost)
            for name, factory in LAYERS.items():
                rate, cost = layer_send_group(factory, server.url, args.seconds)
                record(group, name, rate)
                record(cpu, name, cost)
            if has_old:
                record(
                    f"send_group to {GROUP_SIZE} calls/s",
                    "asgi_redis 1.4.3",
                    asgi_redis(old_python, "group", server.url, args.seconds),
                )
            for kind in ["raw", *LAYERS]:
                latencies = wakeup(kind, server.url, args.samples)
                column = "raw redis-py" if kind == "raw" else kind
                record("wake-up p50 ms", column, percentile(latencies, 0.5))
                record("wake-up p99 ms", column, percentile(latencies, 0.99))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    finally:
        server.cleanup()

    print(f"\nmedians of {args.runs} interleaved runs (1 KB messages, one redis-server on loopback)\n")
    for measure, columns in results.items():
        print(measure)
        raw = columns.get("raw redis-py")
        for column, values in columns.items():
            median = statistics.median(values)
            ratio = ""
            if raw and column != "raw redis-py" and len(raw) == len(values):
                # Runs are interleaved: compare each run with its own baseline.
                ratios = [value / base for value, base in zip(values, raw)]
                ratio = f"  ({statistics.median(ratios):.0%} of raw redis-py, median of per-run ratios)"
            spread = f"[{min(values):.3g}..{max(values):.3g}]"
            print(f"  {column:<24} {median:>10.4g} {spread}{ratio}")
        if measure.endswith("calls/s"):
            for column, values in columns.items():
                print(f"  {column:<24} {statistics.median(values) * GROUP_SIZE:>10.4g} messages delivered/s")
        print()


if __name__ == "__main__":
    main()
