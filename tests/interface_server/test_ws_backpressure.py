"""Backpressure on WebSockets, both ways.

Outbound: a client that does not read is closed with 1008 once the server
holds ``max_pending_bytes`` for it (StringTransport cases, where the test
plays the kernel by pausing the transport's producer, and one real socket
that never reads while the application floods it). Inbound: reading pauses
while a connection's messages wait for the layer, and resumes when they
have gone.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import struct
import threading
import time

import pytest
import websocket
from twisted.internet import task
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from asgi_backends.inmemory import ChannelLayer
from interface_server.cli import build_parser, config_from_args
from interface_server.config import ServerConfig
from interface_server.flow import InboundFlow, OutboundBuffer
from interface_server.sending import Sender
from interface_server.ws_protocol import WSState
from tests.support.waiting import wait_until

from .conftest import recv_until
from .test_ws_limits import close_code_of, disconnect_code, open_connection
from .test_ws_timeouts import OP_PING, OP_TEXT, Harness


def slow_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is not reading" in r.getMessage()]


# -- outbound: a client that does not read ------------------------------------------------------


def test_client_that_does_not_read_is_closed_just_past_max_pending_bytes(caplog):
    harness = Harness(max_pending_bytes=10_000)
    slow, other = open_connection(harness), open_connection(harness)
    slow.transport.producer.pauseProducing()  # what TCP does when the socket's send buffer fills
    for _ in range(10):
        slow.reply({"text": "x" * 996})  # 1000 bytes a frame, header included
    assert [op for op, _ in slow.frames()] == [OP_TEXT] * 10
    assert slow.protocol.ws_state is WSState.OPEN and slow.protocol.outbound.pending == 10_000
    slow.reply({"text": "y"})  # one frame more: past the limit
    assert slow.frames() == [(0x8, struct.pack("!H", 1008) + b"client too slow")]
    assert slow.transport.disconnecting
    slow.reply({"text": "dropped"})
    assert slow.frames() == []
    assert len(slow_warnings(caplog)) == 1 and "Traceback" not in caplog.text
    assert disconnect_code(harness, slow) == 1008
    # Nobody else noticed.
    other.reply({"text": "fine"})
    assert other.frames() == [(OP_TEXT, b"fine")]


def test_websocket_that_reads_nothing_for_send_timeout_is_dropped(caplog):
    caplog.set_level(logging.INFO, logger="interface_server")
    harness = Harness(send_timeout=10.0, ping_interval=0)
    slow, other = open_connection(harness), open_connection(harness)
    slow.transport.producer.pauseProducing()
    slow.reply({"text": "unread"})
    harness.clock.advance(9.9)
    assert not slow.transport.disconnected
    harness.clock.advance(0.2)
    assert slow.transport.disconnected  # aborted: a close frame would not be read either
    assert disconnect_code(harness, slow) == 1006
    assert len([r for r in caplog.records if "send_timeout" in r.getMessage()]) == 1
    other.reply({"text": "fine"})
    assert other.frames() == [(OP_TEXT, b"fine")]


def test_draining_resets_the_count_and_a_big_write_to_a_reader_is_fine():
    harness = Harness(max_pending_bytes=10_000)
    conn = open_connection(harness)
    conn.reply({"bytes": b"b" * 50_000})  # larger than the limit, but the socket was keeping up
    producer = conn.transport.producer
    for _ in range(3):
        producer.pauseProducing()
        producer.pauseProducing()  # TCP repeats it on every write while full: not a new count
        for _ in range(9):
            conn.reply({"text": "x" * 996})
        producer.resumeProducing()  # the client read everything
    assert close_code_of(conn.frames()) is None and conn.protocol.ws_state is WSState.OPEN


def test_pongs_to_a_client_that_does_not_read_count_too():
    harness = Harness(max_pending_bytes=1000)
    conn = open_connection(harness)
    conn.transport.producer.pauseProducing()
    for _ in range(7):
        conn.send(OP_PING, b"p" * 125)  # each pong is 127 bytes: 889 held
    assert close_code_of(conn.frames()) is None
    conn.send(OP_PING, b"p" * 125)
    assert close_code_of(conn.frames()) == 1008


def test_backpressure_options_defaults_cli_and_validation():
    parser = build_parser()

    def config(*argv):
        return config_from_args(parser.parse_args(["m:layer", *argv]), None)

    assert config().max_pending_bytes == ServerConfig().max_pending_bytes == 4 * 1024 * 1024
    assert config().websocket_max_in_flight == ServerConfig().websocket_max_in_flight == 32
    assert config("--max-pending-bytes", "65536").max_pending_bytes == 65536
    assert config("--websocket-max-in-flight", "8").websocket_max_in_flight == 8
    for name in ("max_pending_bytes", "websocket_max_in_flight"):
        with pytest.raises(ValueError, match=name):
            ServerConfig(**{name: 0})
    assert config().send_timeout == ServerConfig().send_timeout == 60.0
    assert config("--send-timeout", "2.5").send_timeout == 2.5
    assert config("--send-timeout", "0").send_timeout is None
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="send_timeout"):
            ServerConfig(send_timeout=bad)
    with pytest.raises(ValueError):
        OutboundBuffer(0)
    with pytest.raises(ValueError, match="stall_timeout"):
        OutboundBuffer(10, stall_timeout=1.0)
    with pytest.raises(ValueError):
        InboundFlow(None, None, max_messages=0, max_bytes=1)


# -- inbound: reading pauses while messages wait for the layer -----------------------------------------


class HeldSender:
    """Stands in for the sender threads: keeps every send until the test lets it go."""

    def __init__(self, layer):
        self.layer = layer
        self.held = []

    def send(self, key, channel, message, on_error=None, retry_full=False, flow=None):
        if channel == "websocket.receive":
            self.held.append((channel, message, flow))
        else:
            self.layer.send(channel, message)

    def release(self, count):
        for _ in range(count):
            channel, message, flow = self.held.pop(0)
            self.layer.send(channel, message)
            flow.finished_here()


def test_reading_pauses_while_too_many_messages_wait_and_resumes_when_half_have_gone():
    harness = Harness(websocket_max_in_flight=4)
    sender = harness.ctx.sender = HeldSender(harness.layer)
    conn, other = open_connection(harness), open_connection(harness)
    for n in range(3):
        conn.send(OP_TEXT, b"m%d" % n)
    assert conn.transport.producerState == "producing"
    conn.send(OP_TEXT, b"m3")
    assert conn.transport.producerState == "paused"
    assert other.transport.producerState == "producing"
    sender.release(1)
    assert conn.transport.producerState == "paused"  # 3 waiting: more than half
    sender.release(1)
    assert conn.transport.producerState == "producing"
    sender.release(2)
    texts = [harness.layer.receive(["websocket.receive"], block=False)[1]["text"] for _ in range(4)]
    assert texts == ["m0", "m1", "m2", "m3"]


def test_reading_pauses_on_bytes_waiting_too():
    harness = Harness(max_pending_bytes=2000)
    sender = harness.ctx.sender = HeldSender(harness.layer)
    conn = open_connection(harness)
    conn.send(OP_TEXT, b"a" * 1999)
    assert conn.transport.producerState == "producing"
    conn.send(OP_TEXT, b"b")
    assert conn.transport.producerState == "paused"
    sender.release(1)
    assert conn.transport.producerState == "producing"


def test_a_closed_connection_is_never_resumed():
    harness = Harness(websocket_max_in_flight=1)
    sender = harness.ctx.sender = HeldSender(harness.layer)
    conn = open_connection(harness)
    conn.send(OP_TEXT, b"one")
    assert conn.transport.producerState == "paused"
    conn.send(0x8, struct.pack("!H", 1000))
    conn.protocol.connectionLost(Failure(ConnectionDone()))
    sender.release(1)
    assert conn.transport.producerState == "paused"


class Reactor:
    """``callFromThread`` for a test without a reactor: runs the call in a thread-safe queue."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def callFromThread(self, function, *args):
        with self.lock:
            self.calls.append((function, args))

    def run_calls(self):
        with self.lock:
            calls, self.calls = self.calls, []
        for function, args in calls:
            function(*args)


class Transport:
    def __init__(self):
        self.paused = False

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False


def test_sender_threads_tell_the_flow_when_messages_have_gone():
    gate = threading.Event()
    layer = ChannelLayer()
    send_batch = layer.send_batch

    def gated_send_batch(items):
        gate.wait(10)
        return send_batch(items)

    layer.send_batch = gated_send_batch
    reactor = Reactor()
    transport = Transport()
    flow = InboundFlow(transport, reactor, max_messages=4, max_bytes=10**6)
    sender = Sender(layer, reactor, threads=1)
    for n in range(4):
        flow.add(10)
        sender.send(1, "frames", {"n": n}, flow=flow)
    assert transport.paused and flow.waiting == 4
    gate.set()
    def resumed():
        reactor.run_calls()
        return not transport.paused

    wait_until(resumed, 5, what="reading to resume")
    assert not transport.paused and flow.waiting == 0 and flow.waiting_bytes == 0
    sender.close()


def test_sender_counts_failed_and_retried_messages_as_gone():
    layer = ChannelLayer(capacity=1)
    layer.send("full", {"filler": True})
    reactor = Reactor()
    flow = InboundFlow(Transport(), reactor, max_messages=10, max_bytes=10**6)
    sender = Sender(layer, reactor, threads=1, full_retry=0.05)
    for _ in range(3):
        flow.add(1)
    sender.send(1, "full", {"n": 1}, retry_full=True, flow=flow)  # refused until the deadline
    sender.send(1, "bad name!?", {"n": 2}, flow=flow)  # refused at once (TypeError)
    sender.send(1, "fine", {"n": 3}, flow=flow)
    sender.close()
    assert flow.waiting == 0
    inline = Sender(layer, reactor, threads=0)
    flow.add(1)
    inline.send(1, "fine", {"n": 4}, flow=flow)
    assert flow.waiting == 0


# -- a real socket that never reads -----------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_unless_full(layer, channel: str, message: dict) -> bool:
    """Send ``message``; False (nothing sent) if the channel is full."""
    try:
        layer.send(channel, message)
    except layer.ChannelFull:
        return False
    return True


HANDSHAKE = (b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_unread_socket_flooded_by_the_application_is_closed_and_memory_stays_bounded(start_server):
    server = start_server("--max-pending-bytes", "1000000")
    # A client that reads its 101 and then nothing more, with a small receive buffer.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", server.port))
    server.sockets.append(sock)
    sock.sendall(HANDSHAKE)
    _, connect = server.receive("websocket.connect")
    flooded = connect["reply_channel"]
    server.layer.send(flooded, {"accept": True})
    assert b" 101 " in recv_until(sock, b"\r\n\r\n")
    # A well-behaved client alongside it.
    result = {}
    opener = threading.Thread(target=lambda: result.update(
        ws=websocket.create_connection(f"ws://127.0.0.1:{server.port}/calm", timeout=5)), daemon=True)
    opener.start()
    _, calm_connect = server.receive("websocket.connect")
    server.layer.send(calm_connect["reply_channel"], {"accept": True})
    opener.join(5)
    calm = result["ws"]

    baseline = rss_kib(server.proc.pid)
    peak = [baseline]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], rss_kib(server.proc.pid))
            sampling.wait(0.02)  # the next sample, unless sampling has ended

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunk = "x" * 65536
    sent = 0
    try:
        # 100 MiB for a client that reads none of it (what made the server hold 199 MB before).
        for n in range(1600):
            wait_until(lambda: send_unless_full(server.layer, flooded, {"text": chunk}), 20,
                       what="room on the flooded socket's reply channel")
            sent += len(chunk)
            if n % 200 == 0:
                # Meanwhile the other client is served as usual.
                server.layer.send(calm_connect["reply_channel"], {"text": f"still here {n}"})
                assert calm.recv() == f"still here {n}"
        _, disconnect = server.receive("websocket.disconnect", timeout=20, reply_channel=flooded)
    finally:
        sampling.set()
        sampler.join(5)
    assert disconnect["code"] == 1008
    growth_mib = (peak[0] - baseline) / 1024
    # Bounded: the 1 MB pending limit plus the reply receiver's batches and the allocator's slack (a
    # run on a busy machine peaked at 20 MiB); unbounded it would be the 100 MiB sent.
    assert growth_mib < 40, f"server RSS grew by {growth_mib:.0f} MiB for one unread client ({sent >> 20} MiB sent)"
    # The socket is closed: reading now finds the end (or the reset) after what was buffered.
    sock.settimeout(5)
    closed = False
    try:
        while sock.recv(1 << 20):
            pass
        closed = True
    except ConnectionResetError:
        closed = True
    assert closed
    calm.send("after")
    _, received = server.receive("websocket.receive", reply_channel=calm_connect["reply_channel"])
    assert received["text"] == "after"
    calm.close()
    assert server.log.count("is not reading") == 1, server.log
    assert "Traceback" not in server.log
    assert os.path.exists(f"/proc/{server.proc.pid}")  # still running


class ThreadClock(task.Clock):
    """A ``task.Clock`` whose ``callFromThread`` queues the call for the test thread to run (:meth:`pump`)."""

    def __init__(self):
        super().__init__()
        self.from_threads = queue.SimpleQueue()

    def callFromThread(self, function, *args, **kwargs):
        self.from_threads.put((function, args, kwargs))

    def pump(self, until, timeout=5.0):
        """Run calls from other threads until ``until()`` is true."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting on the sender thread"
            try:
                function, args, kwargs = self.from_threads.get(timeout=remaining)
            except queue.Empty:
                continue
            function(*args, **kwargs)


def test_full_websocket_receive_pauses_reading_while_retried_then_closes_1013(caplog):
    layer = ChannelLayer(channel_capacity={"websocket.receive": 1})
    clock = ThreadClock()
    harness = Harness(layer=layer, clock=clock, websocket_max_in_flight=2, websocket_receive_retry=0.2)
    conn = open_connection(harness)
    sender = harness.ctx.sender = Sender(layer, clock, threads=1, full_retry=0.2)
    layer.send("websocket.receive", {"filler": True})
    started = time.monotonic()
    conn.send(OP_TEXT, b"one")
    conn.send(OP_TEXT, b"two")
    assert conn.transport.producerState == "paused"  # both wait for the full channel
    clock.advance(0)  # the reactor turn ends: the sender thread gets them
    clock.pump(lambda: conn.protocol.ws_state is not WSState.OPEN)
    assert time.monotonic() - started >= 0.15  # retried first
    assert close_code_of(conn.frames()) == 1013
    assert conn.transport.producerState == "paused"  # a closing socket is not read again
    assert "Traceback" not in caplog.text
    sender.close()
    harness.ctx.sender = Sender(layer, clock, threads=0)  # the disconnect goes out inline, for the check
    assert disconnect_code(harness, conn) == 1013


def test_real_client_that_never_reads_a_closed_response_is_freed_by_the_send_timeout(start_server):
    # A 10.8 MB response, under --max-pending-bytes, to a client that reads none of it: the kernel
    # takes up to its 4 MiB send buffer, the server holds the rest and closes its side (Connection:
    # close), but the socket stays until the send timeout aborts it.
    # -v 2: what one client does is logged at INFO only from verbosity 2 on.
    server = start_server("--send-timeout", "1", "--max-pending-bytes", "100000000", "-v", "2")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    server.sockets.append(sock)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _, request = server.receive("http.request")
    reply, chunk, chunks = request["reply_channel"], b"z" * 900_000, 12
    server.layer.send(reply, {"status": 200, "headers": [[b"content-length", str(len(chunk) * chunks).encode()]],
                              "content": chunk, "more_content": True})
    for n in range(1, chunks):
        server.layer.send(reply, {"content": chunk, "more_content": n < chunks - 1})
    wait_until(lambda: "send_timeout" in server.log, timeout=15, what="the send timeout to fire")
    assert "Traceback" not in server.log
    # What the kernel had buffered is still readable; then the connection ends, cut short.
    sock.settimeout(5)
    received = 0
    try:
        while data := sock.recv(65536):  # a socket.timeout here fails the test: the connection stayed
            received += len(data)
    except ConnectionResetError:
        pass
    assert received < len(chunk) * chunks
