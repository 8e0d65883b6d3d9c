"""The harness's load clients: one process per kind, standard-library asyncio, every message numbered.

Run as ``python -m benchmarks.faults.clients '<json config>'`` (the harness
does). The process connects, prints ``ready`` on stdout, loads the server
until SIGTERM, then waits up to ``drain`` seconds for what is outstanding,
closes its sockets and writes what it saw to ``config["out"]`` as JSON.
Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every
process of the machine), so the harness can line them up with its faults.

Kinds:

* ``http``: open-loop GETs at ``rate`` per second over up to
  ``connections`` keep-alive connections (a request finding every
  connection busy is counted ``skipped``), path ``path?k=KEY`` plus
  ``query``. A client that falls behind its :class:`Schedule` (its own
  process starved of CPU) skips what it missed, counted ``late``, instead of
  sending it in one burst: a load the scenario never offered. Records ``[start, end, status, pid, key]``; ``status`` is the HTTP
  status, or -1 (connection refused or reset), -2 (no answer within
  ``timeout``), -3 (an answer naming another request's key). A request on
  a reused connection that the server had closed is sent again on a new
  one, as HTTP clients do for idempotent requests.
* ``echo``: ``count`` WebSockets on ``path``, each sending ``KEY`` texts
  ``interval`` seconds apart with up to ``window`` unanswered, echoes
  expected as ``KEY pid``. With ``reconnect`` a closed socket reconnects
  with the JavaScript client's backoff (1 s × 1.5ⁿ, ±20 %, at most 10 s).
  Records per socket its ``events`` (``[t, "open"]``, ``[t, "close",
  code]`` when the server closed or the socket dropped, ``[t, "bye",
  code]`` when we closed it, ``[t, "refused", reason]``) and ``msgs`` ``[key, sent, answered
  or None, "open"|"cut"]`` ("cut": the socket closed before an answer).
* ``room``: ``count`` WebSockets on ``path`` that only listen; records per
  socket its events and ``got`` ``[[key, t], ...]``.
* ``churn``: ``count`` loops, each connecting to ``path``, sending one
  text, awaiting its echo and closing, again and again; records
  ``[start, end, outcome]`` per cycle ("ok", "refused", "closed", "lost").
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import signal
import struct
import sys
import time
from typing import Any

HOST = "127.0.0.1"
now = time.monotonic
MAX_LAG = 0.05  # seconds an open-loop client may run behind its schedule before it drops what it missed


def raise_fd_limit() -> None:
    """Allow as many sockets as the hard limit does (1,000 WebSockets need more than 1,024 fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- WebSocket framing (client side: masked) --------------------------------------


def frame(opcode: int, payload: bytes) -> bytes:
    """Return one masked, unfragmented client frame."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    key = (mask * (length // 4 + 1))[:length]
    return header + mask + bytes(a ^ b for a, b in zip(payload, key))


class Closed(Exception):
    """The WebSocket closed; ``code`` is the server's close code, 1006 when it just dropped."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Refused(Exception):
    """The handshake did not open a WebSocket (connection refused, or an HTTP status)."""


class WebSocket:
    """One client WebSocket over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False
        self.closing = False  # we sent the first close frame

    @classmethod
    async def connect(cls, port: int, path: str, timeout: float = 10.0) -> WebSocket:
        """Open a WebSocket on ``path``; raises :class:`Refused` if it does not open."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise Refused(type(exc).__name__) from None
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError) as exc:
            writer.close()
            raise Refused(type(exc).__name__) from None
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise Refused(head.split(b"\r\n", 1)[0].decode(errors="replace")[9:12])
        return cls(reader, writer)

    def send(self, text: str) -> None:
        if not self.closed:
            self.writer.write(frame(0x1, text.encode()))

    async def receive(self) -> str:
        """Return the next text message (answering pings); raises :class:`Closed`."""
        try:
            while True:
                first, second = await self.reader.readexactly(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(length)
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self._answer_close(payload[:2])
                    raise Closed(code)
                if opcode == 0x9:
                    self.writer.write(frame(0xA, payload))
                elif opcode in (0x1, 0x2):
                    return payload.decode()
        except (OSError, asyncio.IncompleteReadError):
            self.closed = True
            self.writer.close()
            raise Closed(1006) from None

    def _answer_close(self, code: bytes) -> None:
        self.closed = True
        if not self.closing:
            self.writer.write(frame(0x8, code))
        self.writer.close()

    def start_close(self) -> None:
        """Send our close frame (1000); whoever reads sees the server's answer as ``Closed``."""
        if not self.closed and not self.closing:
            self.closing = True
            self.writer.write(frame(0x8, struct.pack("!H", 1000)))

    async def close(self, timeout: float = 2.0) -> None:
        """Close and wait (briefly) for the server's answer; for sockets nobody else reads."""
        self.start_close()
        try:
            await asyncio.wait_for(self._until_closed(), timeout)
        except asyncio.TimeoutError:
            pass
        self.writer.close()

    async def _until_closed(self) -> None:
        try:
            while True:
                await self.receive()
        except Closed:
            pass


def reconnect_delay(attempt: int) -> float:
    """The JavaScript client's pause before reconnect attempt ``attempt`` (from 0), seconds."""
    return min(10.0, 1.0 * 1.5 ** attempt) * (0.8 + random.random() * 0.4)


# -- the kinds of load ----------------------------------------------------------------


class Client:
    """The running load of one client process; ``stop`` is set by SIGTERM."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.port = config["port"]
        self.name = config.get("name", "c")
        self.stop = asyncio.Event()
        self.result: dict[str, Any] = {"kind": config["kind"]}


class EchoSocket:
    """One echo WebSocket's state, across its reconnects."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[list] = []
        self.msgs: dict[str, list] = {}
        self.outstanding: set[str] = set()
        self.seq = 0
        self.dups = 0
        self.answered = asyncio.Event()

    def on_echo(self, text: str) -> None:
        key = text.split(" ", 1)[0]
        record = self.msgs.get(key)
        if record is None:
            return
        if record[2] is not None:
            self.dups += 1
            return
        record[2] = now()
        self.outstanding.discard(key)
        self.answered.set()

    def on_close(self, code: int, by_us: bool = False) -> None:
        self.events.append([now(), "bye" if by_us else "close", code])
        for key in self.outstanding:
            self.msgs[key][3] = "cut"
        self.outstanding.clear()
        self.answered.set()


async def echo_socket(client: Client, state: EchoSocket, ready: asyncio.Event) -> None:
    config = client.config
    interval, window = config.get("interval", 0.1), config.get("window", 1)
    path, reconnect = config.get("path", "/echo/"), config.get("reconnect", False)
    attempt = 0
    while not client.stop.is_set():
        try:
            ws = await WebSocket.connect(client.port, path)
        except Refused as exc:
            state.events.append([now(), "refused", str(exc)])
            if not reconnect:
                return
            await sleep_or_stop(client.stop, reconnect_delay(attempt))
            attempt += 1
            continue
        attempt = 0
        state.events.append([now(), "open"])
        ready.set()
        reading = asyncio.ensure_future(read_echoes(ws, state))
        try:
            while not client.stop.is_set() and not reading.done():
                if len(state.outstanding) >= window:
                    state.answered.clear()
                    waited = now()
                    await wait_any(state.answered.wait(), reading, client.stop.wait(), timeout=config.get("timeout", 5))
                    if len(state.outstanding) >= window and now() - waited >= config.get("timeout", 5):
                        state.outstanding.clear()  # given up on: stays unanswered (lost) unless it comes late
                    continue
                state.seq += 1
                key = f"{state.name}.{state.seq}"
                state.msgs[key] = [key, now(), None, "open"]
                state.outstanding.add(key)
                ws.send(key)
                if interval:
                    await wait_any(reading, client.stop.wait(), timeout=interval)
        finally:
            if not reading.done():
                # Stopping: give the echoes in flight a moment, then close.
                deadline = now() + config.get("drain", 3)
                while state.outstanding and now() < deadline and not reading.done():
                    state.answered.clear()
                    await wait_any(state.answered.wait(), reading, timeout=deadline - now())
                ws.start_close()
                await wait_any(reading, timeout=2)
                ws.writer.close()
                reading.cancel()
        if not reconnect or client.stop.is_set():
            return
        await sleep_or_stop(client.stop, reconnect_delay(0))
        attempt = 1


async def read_echoes(ws: WebSocket, state: EchoSocket) -> None:
    try:
        while True:
            state.on_echo(await ws.receive())
    except Closed as closed:
        state.on_close(closed.code, by_us=ws.closing)


async def wait_any(*waits: Any, timeout: float) -> None:
    """Wait until one of ``waits`` finishes or ``timeout`` passes; cancels the coroutines it started."""
    tasks = [w if isinstance(w, asyncio.Future) else asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task, wait in zip(tasks, waits):
            if task is not wait:
                task.cancel()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    await wait_any(stop.wait(), timeout=seconds)


async def run_echo(client: Client) -> None:
    count = client.config["count"]
    states = [EchoSocket(f"{client.name}{n}") for n in range(count)]
    readies = [asyncio.Event() for _ in states]
    tasks = [asyncio.ensure_future(echo_socket(client, s, r)) for s, r in zip(states, readies)]
    await wait_any(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    client.result["sockets"] = [{"events": s.events, "msgs": list(s.msgs.values()), "dups": s.dups} for s in states]


async def room_socket(client: Client, events: list, got: list, ready: asyncio.Event) -> None:
    reconnect = client.config.get("reconnect", False)
    attempt = 0
    while not client.stop.is_set():
        try:
            ws = await WebSocket.connect(client.port, client.config.get("path", "/room/"))
        except Refused as exc:
            events.append([now(), "refused", str(exc)])
            if not reconnect:
                return
            await sleep_or_stop(client.stop, reconnect_delay(attempt))
            attempt += 1
            continue
        attempt = 0
        events.append([now(), "open"])
        ready.set()
        reading = asyncio.ensure_future(listen_room(ws, events, got))
        await wait_any(reading, client.stop.wait(), timeout=1e9)
        if not reading.done():
            ws.start_close()
            await wait_any(reading, timeout=2)
            ws.writer.close()
            reading.cancel()
            return
        if not reconnect:
            return
        await sleep_or_stop(client.stop, reconnect_delay(0))
        attempt = 1


async def listen_room(ws: WebSocket, events: list, got: list) -> None:
    try:
        while True:
            got.append([(await ws.receive()).split(" ", 1)[0], now()])
    except Closed as closed:
        events.append([now(), "bye" if ws.closing else "close", closed.code])


async def run_room(client: Client) -> None:
    count = client.config["count"]
    sockets = [([], []) for _ in range(count)]
    readies = [asyncio.Event() for _ in sockets]
    tasks = [asyncio.ensure_future(room_socket(client, e, g, r)) for (e, g), r in zip(sockets, readies)]
    await wait_any(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    client.result["sockets"] = [{"events": e, "got": g} for e, g in sockets]


async def run_churn(client: Client) -> None:
    cycles: list[list] = []
    config = client.config

    async def loop(index: int) -> None:
        seq = 0
        while not client.stop.is_set():
            seq += 1
            started = now()
            try:
                ws = await WebSocket.connect(client.port, config.get("path", "/churn/"))
            except Refused:
                cycles.append([started, now(), "refused"])
                await sleep_or_stop(client.stop, 1.0)
                continue
            key = f"{client.name}{index}.{seq}"
            ws.send(key)
            try:
                reply = await asyncio.wait_for(ws.receive(), config.get("timeout", 5))
                outcome = "ok" if reply.split(" ", 1)[0] == key else "wrong"
            except Closed:
                outcome = "closed"
            except asyncio.TimeoutError:
                outcome = "lost"
            await ws.close()
            cycles.append([started, now(), outcome])
            await sleep_or_stop(client.stop, config.get("interval", 0.2))

    print("ready", flush=True)
    await asyncio.gather(*(loop(n) for n in range(config["count"])))
    client.result["cycles"] = cycles


class HttpConnection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = False

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
        self.used = False

    async def get(self, port: int, target: str) -> tuple[int, bytes]:
        """Send one GET and return ``(status, body)``; raises OSError/IncompleteReadError when the socket fails."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            body = body[:-2]
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.drop()
        else:
            self.used = True
        return status, body


class Schedule:
    """An open-loop client's send times: one every ``1 / rate`` seconds from ``start``.

    A client more than :data:`MAX_LAG` behind (its process starved of CPU)
    skips the slots it missed, counting them in ``late``, instead of sending
    them all at once.
    """

    def __init__(self, rate: float, start: float) -> None:
        self.rate = rate
        self.start = start
        self.sent = 0
        self.late = 0

    def wait(self, at: float) -> float:
        """Seconds from ``at`` until the next send is due (0 when it is due now)."""
        lag = at - (self.start + self.sent / self.rate)
        if lag < 0:
            return -lag
        if lag > MAX_LAG:
            missed = int(lag * self.rate)
            self.late += missed
            self.sent += missed
        return 0.0

    def take(self) -> int:
        """Claim the due slot; returns its number, counting from 1."""
        self.sent += 1
        return self.sent


async def run_http(client: Client) -> None:
    config = client.config
    rate, limit, timeout = config["rate"], config.get("connections", 50), config.get("timeout", 30)
    target = config.get("path", "/") + "?" + (config["query"] + "&" if config.get("query") else "") + "k="
    idle: list[HttpConnection] = []
    busy = 0
    records: list[list] = []
    skipped = 0
    tasks: set[asyncio.Task] = set()

    async def one(conn: HttpConnection, key: str, started: float) -> None:
        nonlocal busy
        status, pid = -1, 0
        for attempt in range(2):
            reused = conn.used
            try:
                code, body = await asyncio.wait_for(conn.get(client.port, target + key), timeout)
            except asyncio.TimeoutError:
                conn.drop()
                status = -2
                break
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                conn.drop()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: send again on a new one
                status = -1
                break
            status = code
            if code == 200:
                parts = body.decode(errors="replace").split(" ")
                if len(parts) != 2 or parts[1] != key:
                    status = -3
                else:
                    pid = int(parts[0])
            break
        records.append([started, now(), status, pid, key])
        busy -= 1
        idle.append(conn)

    print("ready", flush=True)
    schedule = Schedule(rate, now())
    while not client.stop.is_set():
        wait = schedule.wait(now())
        if wait > 0:
            await sleep_or_stop(client.stop, wait)
            continue
        sent = schedule.take()
        if idle:
            conn = idle.pop()
        elif busy < limit:
            conn = HttpConnection()
        else:
            skipped += 1
            continue
        busy += 1
        task = asyncio.ensure_future(one(conn, f"{client.name}.{sent}", now()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks), timeout=config.get("drain", timeout))
    for conn in idle:
        conn.drop()
    client.result.update(records=records, skipped=skipped, late=schedule.late)


KINDS = {"http": run_http, "echo": run_echo, "room": run_room, "churn": run_churn}


def main() -> None:
    config = json.loads(sys.argv[1])
    raise_fd_limit()

    async def run() -> dict[str, Any]:
        client = Client(config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, client.stop.set)
        await KINDS[config["kind"]](client)
        return client.result

    result = asyncio.run(run())
    with open(config["out"], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
