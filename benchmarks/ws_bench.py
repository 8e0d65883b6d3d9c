"""WebSocket echo load: N clients each send a message, await its echo, send again.

Standard-library asyncio client (RFC 6455 framing, masked text frames).
Prints round trips/s, p50/p99 round-trip latency, and counts of lost
(never echoed before the end) and out-of-order/wrong echoes::

    python benchmarks/ws_bench.py ws://127.0.0.1:8000/ --clients 100 --duration 10

``--compare`` starts this project's stack and Daphne 1.4.2's (``stacks.py``)
and alternates runs between them, printing medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import struct
import time
from urllib.parse import urlsplit


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.lost = 0
        self.out_of_order = 0
        self.failed_connections = 0


async def handshake(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


def text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def read_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
    """Return the next data frame's payload (answering pings); None on close."""
    while True:
        first, second = await reader.readexactly(2)
        opcode = first & 0x0F
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(length)
        if opcode == 0x8:
            return None
        if opcode == 0x9:  # ping -> pong
            mask = os.urandom(4)
            writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            continue
        if opcode in (0x1, 0x2):
            return payload


async def connect(url: str, stats: Stats) -> tuple | None:
    parts = urlsplit(url)
    try:
        return await handshake(parts.hostname, parts.port or 80, parts.path or "/")
    except (OSError, ConnectionError, asyncio.IncompleteReadError):
        stats.failed_connections += 1
        return None


async def client(index: int, conn: tuple, stop_at: float, stats: Stats, timeout: float) -> None:
    reader, writer = conn
    sequence = 0
    try:
        while time.monotonic() < stop_at:
            sequence += 1
            expected = f"{index}:{sequence}".encode()
            started = time.perf_counter()
            writer.write(text_frame(expected))
            try:
                payload = await asyncio.wait_for(read_message(reader, writer), timeout)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                stats.lost += 1
                return
            if payload is None:
                stats.lost += 1
                return
            if payload != expected:
                stats.out_of_order += 1
            stats.latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(url: str, clients: int, duration: float, timeout: float) -> dict:
    stats = Stats()
    # Connect everyone first, then measure: the handshake is not what is measured.
    conns = await asyncio.gather(*(connect(url, stats) for _ in range(clients)))
    started = time.monotonic()
    stop_at = started + duration
    await asyncio.gather(*(client(i, conn, stop_at, stats, timeout) for i, conn in enumerate(conns) if conn))
    elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "round_trips": len(stats.latencies),
        "round_trips_per_s": len(stats.latencies) / elapsed,
        "p50_ms": percentile(stats.latencies, 0.50) * 1000,
        "p99_ms": percentile(stats.latencies, 0.99) * 1000,
        "mean_ms": (statistics.fmean(stats.latencies) * 1000) if stats.latencies else float("nan"),
        "lost": stats.lost,
        "out_of_order": stats.out_of_order,
        "failed_connections": stats.failed_connections,
    }


def compare(clients: int, duration: float, timeout: float, runs: int, kinds: list[str]) -> dict:
    """Run the echo load against fresh stacks, alternating between them; print runs and medians."""
    from stacks import Bench, median

    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with Bench() as bench:
        for run_number in range(runs):
            for kind in kinds:
                with bench.stack(kind) as stack:
                    result = asyncio.run(run(f"ws://127.0.0.1:{stack.port}/", clients, duration, timeout))
                results[kind].append(result)
                print(f"run {run_number + 1} {kind:7s} {result['round_trips_per_s']:8.0f} round trips/s  "
                      f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  lost {result['lost']}  "
                      f"out of order {result['out_of_order']}  failed {result['failed_connections']}", flush=True)
                time.sleep(0.5)
    summary = {kind: {key: median([r[key] for r in runs_]) for key in ("round_trips_per_s", "p50_ms", "p99_ms")}
               for kind, runs_ in results.items()}
    for kind, runs_ in results.items():
        summary[kind]["lost"] = sum(r["lost"] for r in runs_)
        summary[kind]["out_of_order"] = sum(r["out_of_order"] for r in runs_)
    print(f"\nW1-IS: {clients} echo clients, {duration:.0f}s x {runs} runs, medians")
    for kind, values in summary.items():
        print(f"  {kind:7s} {values['round_trips_per_s']:8.0f} round trips/s  p50 {values['p50_ms']:7.2f} ms  "
              f"p99 {values['p99_ms']:7.2f} ms  lost {values['lost']}  out of order {values['out_of_order']}")
    if "ours" in summary and "daphne" in summary:
        ours, old = summary["ours"], summary["daphne"]
        print(f"  ratio of medians   {ours['round_trips_per_s'] / old['round_trips_per_s']:.2f}x round trips/s, "
              f"p99 {ours['p99_ms'] / old['p99_ms']:.2f}x of Daphne's")
        pairs = list(zip(results["ours"], results["daphne"]))
        print(f"  median per-run ratio "
              f"{median([a['round_trips_per_s'] / b['round_trips_per_s'] for a, b in pairs]):.2f}x round trips/s, "
              f"p99 {median([a['p99_ms'] / b['p99_ms'] for a, b in pairs]):.2f}x")
    return {"runs": results, "medians": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description="WebSocket echo round-trip load")
    parser.add_argument("url", nargs="?", help="ws:// URL of a running server (omit with --compare)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before an echo counts as lost")
    parser.add_argument("--compare", action="store_true",
                        help="start this project's stack and Daphne 1.4.2's (see stacks.py) and alternate runs")
    parser.add_argument("--runs", type=int, default=3, help="runs per stack with --compare")
    parser.add_argument("--stacks", default="ours,daphne", help="stacks to run with --compare")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.compare:
        summary = compare(args.clients, args.duration, args.timeout, args.runs, args.stacks.split(","))
        if args.json:
            print(json.dumps(summary))
        return
    if not args.url:
        parser.error("give a ws:// URL, or --compare")
    result = asyncio.run(run(args.url, args.clients, args.duration, args.timeout))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['clients']} clients: {result['round_trips_per_s']:.0f} round trips/s, "
              f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, lost {result['lost']}, "
              f"out of order {result['out_of_order']}, failed connections {result['failed_connections']}")


if __name__ == "__main__":
    main()
