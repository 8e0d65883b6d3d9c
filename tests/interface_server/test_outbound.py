"""Writing to a connection: straight to a plain socket, through the transport once it holds a backlog.

Unit cases drive :class:`OutboundBuffer` over a real socket pair and a
transport double that records what it is handed (as Twisted's TCP
transport would buffer it); the end-to-end cases start the real server
and read slowly from real sockets: every byte arrives in order, and a
connection the server closes behind a backlog does close once the client
has read it all.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import websocket
from twisted.internet.interfaces import ISSLTransport, ISystemHandle
from twisted.internet.testing import StringTransport
from zope.interface import alsoProvides, implementer

from asgi_backends.sockets import plain_socket
from interface_server.flow import OutboundBuffer

from .test_ws_backpressure import HANDSHAKE


@implementer(ISystemHandle)
class SocketTransport:
    """A transport over ``sock`` that keeps what it is handed, as Twisted's does until it can send it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffered: list[bytes] = []
        self.producer = None
        self.disconnecting = False
        self.aborted = False

    def getHandle(self) -> socket.socket:
        return self.sock

    def write(self, data: bytes) -> None:
        self.buffered.append(bytes(data))

    def writeSequence(self, parts) -> None:
        self.buffered.extend(bytes(part) for part in parts)

    def registerProducer(self, producer, streaming: bool) -> None:
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.aborted = True

    def flush(self, reader: socket.socket, already: bytes, total: int) -> bytes:
        """Send the backlog while ``reader`` reads, then resume the producer, as Twisted does.

        Returns what ``reader`` got: ``already`` and the rest of ``total`` bytes.
        """
        backlog = b"".join(self.buffered)
        self.buffered.clear()
        sender = threading.Thread(target=self._send, args=(backlog,))
        sender.start()
        received = already + read_available(reader, total - len(already))
        sender.join(5)
        self.producer.resumeProducing()
        return received

    def _send(self, data: bytes) -> None:
        # Nothing else writes to the socket meanwhile: the test waits for this thread.
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


def read_available(sock: socket.socket, count: int | None = None, timeout: float = 5.0) -> bytes:
    """What ``sock`` has to read now (or, with ``count``, until that many bytes have come)."""
    data = b""
    sock.settimeout(0.05 if count is None else timeout)
    try:
        while count is None or len(data) < count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, BlockingIOError):
        pass
    return data


def attached(sock: socket.socket) -> tuple[OutboundBuffer, SocketTransport]:
    transport = SocketTransport(sock)
    outbound = OutboundBuffer(1000)
    outbound.attach(transport)
    return outbound, transport


def test_a_write_goes_straight_to_the_socket(pair):
    server, client = pair
    outbound, transport = attached(server)
    outbound.write(b"frame one")
    outbound.write_sequence([b"head ", b"body"])
    assert transport.buffered == []
    assert read_available(client, 17) == b"frame onehead body"


def test_what_the_kernel_does_not_take_goes_to_the_transport_and_so_does_all_after_it(pair):
    server, client = pair
    outbound, transport = attached(server)
    big = bytes(range(256)) * 4096  # 1 MiB: far more than the socket takes
    outbound.write(big)
    assert transport.buffered and outbound.held
    received = read_available(client)
    assert 0 < len(received) < len(big)
    outbound.write(b"next")  # the socket has room again, but the backlog must go first
    outbound.write_sequence([b"and ", b"more"])
    assert transport.buffered[-3:] == [b"next", b"and ", b"more"]
    # The transport sends its backlog and resumes the producer: straight writes again.
    received = transport.flush(client, received, len(big) + 12)
    outbound.write(b"last")
    assert transport.buffered == []
    assert received + read_available(client, 4) == big + b"nextand morelast"


def test_a_sequence_the_kernel_takes_part_of_keeps_its_order(pair):
    server, client = pair
    outbound, transport = attached(server)
    parts = [b"h" * 1000, b"b" * 2_000_000, b"t" * 1000]
    outbound.write_sequence(parts)
    assert outbound.held and len(transport.buffered) == 1
    assert transport.flush(client, read_available(client), 2_002_000) == b"".join(parts)


def test_closing_or_aborting_stops_straight_writes(pair):
    server, client = pair
    outbound, transport = attached(server)
    outbound.close()
    outbound.write(b"after close")
    assert transport.disconnecting and transport.buffered == [b"after close"]
    assert read_available(client) == b""
    other, transport = attached(server)
    other.abort()
    other.write(b"after abort")
    assert transport.aborted and transport.buffered == [b"after abort"]


def test_a_new_protocol_on_the_connection_writes_after_what_the_old_one_left_behind(pair):
    server, client = pair
    http, transport = attached(server)
    http.write(b"r" * 1_000_000)
    assert http.held
    received = read_available(client)  # room in the socket again
    http.detach()
    assert transport.producer is None
    ws = OutboundBuffer(1000)
    ws.attach(transport)
    ws.inherit(http)
    ws.write(b"101")
    assert transport.buffered[-1] == b"101"
    assert transport.flush(client, received, 1_000_003) == b"r" * 1_000_000 + b"101"


def test_a_new_protocol_after_one_that_held_nothing_writes_straight_away(pair):
    server, client = pair
    http, transport = attached(server)
    http.write(b"response")
    http.detach()
    ws = OutboundBuffer(1000)
    ws.attach(transport)
    ws.inherit(http)
    ws.write(b"101")
    assert transport.buffered == [] and read_available(client, 11) == b"response101"


def test_after_a_write_the_transport_was_given_elsewhere_everything_goes_through_it(pair):
    server, client = pair
    outbound, transport = attached(server)
    transport.write(b"queued by Autobahn")  # its own chopped or synchronous writes reach the transport directly
    outbound.hold()
    outbound.write(b" then ours")
    assert transport.buffered == [b"queued by Autobahn", b" then ours"] and read_available(client) == b""


def test_autobahns_own_write_path_holds_the_buffer():
    from .test_ws_timeouts import Harness

    conn = Harness().connect()
    conn.accept()
    framing = conn.protocol
    assert not framing.outbound.held
    framing.sendData(b"\x81\x01a", sync=True)  # Autobahn queues it and writes it itself, later
    assert framing.outbound.held


def test_only_a_plain_socket_is_written_to_directly(pair):
    server, _ = pair
    assert plain_socket(SocketTransport(server)) is server
    tls = SocketTransport(server)
    alsoProvides(tls, ISSLTransport)  # TLS bytes must go through the TLS layer
    assert plain_socket(tls) is None
    assert plain_socket(StringTransport()) is None
    outbound = OutboundBuffer(1000)
    string = StringTransport()
    outbound.attach(string)
    outbound.write(b"through the transport")
    assert string.value() == b"through the transport"


@pytest.mark.parametrize("direct", [True, False])
def test_a_closing_connection_resumed_after_its_backlog_lets_the_transport_close(pair, direct):
    # Twisted finishes a loseConnection only once no paused producer is registered.
    transport = SocketTransport(pair[0]) if direct else StringTransport()
    outbound = OutboundBuffer(1000)
    outbound.attach(transport)
    outbound.pauseProducing()
    outbound.close()
    assert transport.producer is outbound
    outbound.resumeProducing()  # the client read everything
    assert transport.producer is None


def test_a_resumed_open_connection_keeps_its_producer(pair):
    outbound, transport = attached(pair[0])
    outbound.pauseProducing()
    outbound.resumeProducing()
    assert transport.producer is outbound and not outbound.held


# -- the real server, a client that reads slowly ----------------------------------------------------------


def slow_client(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def read_to_end(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything until the server closes; fails if it has not closed within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data


def test_a_response_behind_a_backlog_arrives_whole_and_in_order_then_the_connection_closes(start_server):
    server = start_server()
    sock = slow_client(server.port)
    server.sockets.append(sock)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _, request = server.receive("http.request")
    chunks = [bytes([65 + n]) * 900_000 for n in range(4)]
    server.layer.send(request["reply_channel"], {"status": 200, "content": chunks[0], "more_content": True})
    for chunk in chunks[1:-1]:
        server.layer.send(request["reply_channel"], {"content": chunk, "more_content": True})
    server.layer.send(request["reply_channel"], {"content": chunks[-1]})
    # Read nothing until the server's backlog has built up behind the full socket.
    time.sleep(0.5)  # not synchronisation: the assertions hold with or without it
    head, _, body = read_to_end(sock).partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    decoded, rest = b"", body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        size = int(size, 16)
        decoded, rest = decoded + rest[:size], rest[size + 2:]
        if not size:
            break
    assert decoded == b"".join(chunks)


def next_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """The first server frame in ``data`` as (opcode, payload, what follows), or None if it is not all there."""
    if len(data) < 2:
        return None
    length, offset = data[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(data[2:10], "big"), 10
    if len(data) < offset + length:
        return None
    return data[0] & 0x0F, data[offset:offset + length], data[offset + length:]


def test_a_websocket_closed_behind_a_backlog_gets_every_frame_and_then_the_end(start_server):
    server = start_server()
    sock = slow_client(server.port)
    server.sockets.append(sock)
    sock.sendall(HANDSHAKE)
    _, connect = server.receive("websocket.connect")
    reply = connect["reply_channel"]
    payloads = [bytes([97 + n]) * 600_000 for n in range(4)]
    server.layer.send(reply, {"accept": True})
    for payload in payloads:
        server.layer.send(reply, {"bytes": payload})
    server.layer.send(reply, {"close": 4000})
    time.sleep(0.5)  # not synchronisation: the assertions hold with or without it
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, frames = data.partition(b"\r\n\r\n")
    assert b" 101 " in head
    abnf, received = websocket.ABNF, []
    while not received or received[-1][0] != abnf.OPCODE_CLOSE:
        frame = next_frame(frames)
        if frame is None:
            chunk = sock.recv(1 << 20)
            assert chunk, f"the connection ended after {len(received)} frames"
            frames += chunk
            continue
        opcode, payload, frames = frame
        received.append((opcode, payload))
    # Answer the close (masked, as a client must): then the server drops the connection (with a
    # reset, as Autobahn's servers do once the closing handshake is done).
    sock.sendall(bytes([0x88, 0x82, 0, 0, 0, 0]) + (4000).to_bytes(2, "big"))
    try:
        frames += read_to_end(sock)
    except ConnectionResetError:
        pass
    assert frames == b""
    assert [op for op, _ in received] == [abnf.OPCODE_BINARY] * 4 + [abnf.OPCODE_CLOSE]
    assert [payload for _, payload in received[:4]] == payloads
    assert received[4][1][:2] == (4000).to_bytes(2, "big")


@pytest.mark.parametrize("who", ["client", "server"])
def test_autobahns_own_closes_stop_straight_writes_too(pair, who):
    import struct

    from .test_ws_timeouts import OP_CLOSE, Harness

    conn = Harness().connect()
    conn.accept()
    outbound = conn.protocol.outbound
    outbound.socket = pair[0]  # as on a plain socket (the harness's transport has none)
    if who == "server":
        conn.reply({"close": 4000})  # the application closes: the client answers, Autobahn drops the TCP
        assert outbound.socket is pair[0]  # still open until the client answers
    conn.send(OP_CLOSE, struct.pack("!H", 1000))
    assert outbound.socket is None and conn.transport.disconnecting
