"""Writing to a connection, and closing it behind a backlog.

The end-to-end cases start the real server and read slowly from real
sockets: every byte arrives in order, and a connection the server closes
behind a backlog does close once the client has read it all.
"""

from __future__ import annotations

import socket
import time

import websocket
from twisted.internet.testing import StringTransport

from interface_server.flow import OutboundBuffer

from .test_ws_backpressure import HANDSHAKE


def test_a_closing_connection_resumed_after_its_backlog_lets_the_transport_close():
    # Twisted finishes a loseConnection only once no paused producer is registered.
    transport = StringTransport()
    outbound = OutboundBuffer(1000)
    outbound.attach(transport)
    outbound.pauseProducing()
    outbound.close()
    assert transport.producer is outbound
    outbound.resumeProducing()  # the client read everything
    assert transport.producer is None


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
