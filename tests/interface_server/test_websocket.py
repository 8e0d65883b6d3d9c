"""WebSocket behaviour of the real server, with the test playing the application."""

from __future__ import annotations

import threading
import time

import pytest
import websocket

from .conftest import recv_until, wait_for


def ws_url(server, path="/chat/room?x=1"):
    return f"ws://127.0.0.1:{server.port}{path}"


def open_async(url, **kwargs):
    """Start a WebSocket handshake on a thread; returns (thread, result dict)."""
    result: dict = {}

    def run():
        try:
            result["ws"] = websocket.create_connection(url, timeout=5, **kwargs)
        except Exception as exc:  # the test inspects it
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def accept(server, path="/chat/room?x=1", **kwargs):
    """Open a WebSocket, accept it as the application; return (ws, connect message)."""
    thread, result = open_async(ws_url(server, path), **kwargs)
    _, message = server.receive("websocket.connect")
    server.layer.send(message["reply_channel"], {"accept": True})
    thread.join(5)
    assert "ws" in result, result
    return result["ws"], message


def test_connect_message_and_held_handshake(server):
    thread, result = open_async(ws_url(server), header=["X-Custom: 1"])
    channel, message = server.receive("websocket.connect")
    assert set(message) >= {"reply_channel", "scheme", "path", "query_string", "root_path", "headers",
                            "client", "server", "order"}
    assert message["order"] == 0
    assert message["scheme"] == "ws"
    assert message["path"] == "/chat/room"
    assert message["query_string"] == b"x=1"
    assert [b"x-custom", b"1"] in message["headers"]
    assert message["client"][0] == "127.0.0.1"
    assert message["server"] == ["127.0.0.1", server.port]
    # Held: the client has no 101 until the application answers.
    thread.join(0.3)
    assert thread.is_alive() and not result
    server.layer.send(message["reply_channel"], {"accept": True})
    thread.join(5)
    ws = result["ws"]
    ws.send("hello")
    _, received = server.receive("websocket.receive")
    assert received == {"reply_channel": message["reply_channel"], "path": "/chat/room", "order": 1, "text": "hello"}
    ws.send_binary(b"\x00\xff")
    _, received = server.receive("websocket.receive")
    assert received["bytes"] == b"\x00\xff" and received["order"] == 2 and "text" not in received
    server.layer.send(message["reply_channel"], {"text": "back"})
    assert ws.recv() == "back"
    server.layer.send(message["reply_channel"], {"bytes": b"\x01\x02"})
    assert ws.recv() == b"\x01\x02"
    ws.close()
    _, disconnect = server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
    assert disconnect == {"reply_channel": message["reply_channel"], "code": 1000, "path": "/chat/room", "order": 3}
    wait_for(lambda: '"WSDISCONNECT /chat/room"' in server.access_log.read_text(), what="access log line")
    log = server.access_log.read_text()
    assert '"WSCONNECTING /chat/room"' in log and '"WSCONNECT /chat/room"' in log


def test_reject_gives_403(server):
    for answer in ({"accept": False}, {"close": True}):
        thread, result = open_async(ws_url(server))
        _, message = server.receive("websocket.connect")
        server.layer.send(message["reply_channel"], answer)
        thread.join(5)
        error = result["error"]
        assert isinstance(error, websocket.WebSocketBadStatusException) and error.status_code == 403
        _, disconnect = server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
        assert disconnect["order"] == 1


def test_frame_as_first_answer_accepts_and_is_delivered(server):
    thread, result = open_async(ws_url(server))
    _, message = server.receive("websocket.connect")
    server.layer.send(message["reply_channel"], {"text": "welcome"})
    thread.join(5)
    ws = result["ws"]
    assert ws.recv() == "welcome"
    ws.close()
    server.receive("websocket.disconnect", reply_channel=message["reply_channel"])


def test_server_side_close_with_code(server):
    ws, message = accept(server)
    server.layer.send(message["reply_channel"], {"close": 4001})
    opcode, frame = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame[:2], "big") == 4001
    ws.close()
    _, disconnect = server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
    assert disconnect["order"] == 1 and disconnect["code"] == 4001


def test_frames_sent_before_acceptance_are_kept(server):
    with server.connect() as sock:
        handshake = (b"GET /early HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        frame = websocket.ABNF.create_frame("early bird", websocket.ABNF.OPCODE_TEXT).format()
        sock.sendall(handshake + frame)
        _, message = server.receive("websocket.connect")
        server.layer.send(message["reply_channel"], {"accept": True})
        assert b"101 Switching Protocols" in recv_until(sock, b"\r\n\r\n")
        _, received = server.receive("websocket.receive")
        assert received["text"] == "early bird" and received["order"] == 1
    server.receive("websocket.disconnect", reply_channel=message["reply_channel"])


def test_invalid_utf8_closes_1007_and_garbage_closes_1002(server):
    for payload, opcode, code in ((b"\xff\xfe", websocket.ABNF.OPCODE_TEXT, 1007), (None, None, 1002)):
        ws, message = accept(server)
        if payload is None:
            ws.sock.sendall(b"\x8f\x80garbage-garbage")  # reserved opcode: a protocol error
        else:
            ws.send(payload, opcode)
        opcode_back, frame = ws.recv_data(control_frame=True)
        assert opcode_back == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame[:2], "big") == code
        ws.close()
        server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
    assert "Traceback" not in server.log


def read_close_then_end(sock) -> tuple[int, bool]:
    """Read frames until the server's close frame; return its code and whether the TCP end was clean (FIN)."""
    data = recv_until(sock, b"\x88")
    while True:
        start = data.find(b"\x88")
        if start >= 0 and len(data) >= start + 4:
            code = int.from_bytes(data[start + 2:start + 4], "big")
            break
        data += sock.recv(65536)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return code, False
    return code, True


@pytest.mark.parametrize("frame, code", [
    (b"\x88\x82\0\0\0\0" + (999).to_bytes(2, "big"), 1002),  # a close code no endpoint may send
    (b"\x88\x81\0\0\0\0\x03", 1002),  # a one-byte close payload
    (b"\x81\xff" + (2**40).to_bytes(8, "big") + b"\0\0\0\0" + b"x" * 1000, 1009),  # announces 2**40 bytes
], ids=["close-code-999", "close-one-byte", "frame-of-2**40-bytes"])
def test_bad_frames_get_their_close_frame_before_a_clean_tcp_close(server, frame, code):
    with server.connect() as sock:
        sock.sendall(b"GET /bad HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        _, message = server.receive("websocket.connect")
        server.layer.send(message["reply_channel"], {"accept": True})
        assert b" 101 " in recv_until(sock, b"\r\n\r\n")
        sock.sendall(frame)
        # The close frame arrives, then the end of the stream -- not a reset that loses it.
        assert read_close_then_end(sock) == (code, True)
    _, disconnect = server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
    assert disconnect["code"] == code
    assert "Traceback" not in server.log


def test_subprotocol_negotiation(start_server):
    server = start_server("--ws-protocol", "chat.v2", "--ws-protocol", "chat.v1")
    ws, message = accept(server, subprotocols=["other", "chat.v1"])
    assert ws.getsubprotocol() == "chat.v1"
    assert any(n == b"sec-websocket-protocol" and b"chat.v1" in v for n, v in message["headers"])
    ws.close()


def test_pings_keep_alive_and_missing_pongs_drop(start_server):
    server = start_server("--ping-interval", "0.2", "--ping-timeout", "0.4")
    # A client that answers pings (websocket-client does, inside recv) stays, though it sends nothing itself.
    ws, message = accept(server)
    deadline = time.monotonic() + 1.5
    pings = 0
    while time.monotonic() < deadline:
        ws.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            opcode, _ = ws.recv_data(control_frame=True)  # answers pings itself
        except websocket.WebSocketTimeoutException:
            break
        if opcode == websocket.ABNF.OPCODE_PING:
            pings += 1
    assert pings >= 3 and ws.connected
    ws.send("still here")
    assert server.receive("websocket.receive")[1]["text"] == "still here"
    ws.close()
    # A raw client that never answers is dropped: a ping after 0.2s idle, then 0.4s without a pong.
    with server.connect() as sock:
        sock.sendall(b"GET /silent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        _, silent = server.receive("websocket.connect")
        server.layer.send(silent["reply_channel"], {"accept": True})
        started = time.monotonic()
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass  # pings we never answer
        except ConnectionResetError:
            pass  # dropped: what we wait for
        assert 0.5 < time.monotonic() - started < 3
    _, disconnect = server.receive("websocket.disconnect", reply_channel=silent["reply_channel"])
    assert disconnect["code"] == 1006


def test_websocket_timeout_is_a_lifetime_that_traffic_does_not_extend(start_server):
    """Daphne's --websocket_timeout: a busy, ping-answering socket is still closed (1000) when it is up."""
    server = start_server("--ping-interval", "0.2", "--websocket_timeout", "1")
    started = time.monotonic()
    ws, message = accept(server)
    sent = 0
    close_frame = None
    while close_frame is None and time.monotonic() - started < 5:
        ws.send(f"tick {sent}")
        sent += 1
        ws.settimeout(0.1)  # paces the ticks: wait up to 0.1s for the server's next frame
        try:
            opcode, frame = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            close_frame = frame
    elapsed = time.monotonic() - started
    assert close_frame is not None, "the socket outlived its lifetime"
    assert int.from_bytes(close_frame[:2], "big") == 1000
    assert 1.0 < elapsed < 3.0 and sent >= 8
    ws.close()
    _, disconnect = server.receive("websocket.disconnect", reply_channel=message["reply_channel"])
    assert disconnect["code"] == 1000 and disconnect["order"] > 8


def test_unanswered_handshake_is_refused(start_server):
    server = start_server("--websocket_connect_timeout", "0.5")
    started = time.monotonic()
    thread, result = open_async(ws_url(server))
    server.receive("websocket.connect")
    thread.join(5)
    assert result["error"].status_code == 503
    assert time.monotonic() - started > 0.5


@pytest.mark.parametrize("io", [("--layer-io", "reactor"), ("--layer-io", "threads", "--sender-threads", "4"),
                                ("--layer-io", "threads", "--sender-threads", "0")],
                         ids=["reactor", "threads", "inline"])
def test_full_channels_503_and_1013(start_server, io):
    server = start_server(*io, "--websocket_connect_timeout", "1",
                          capacity={"websocket.connect": 1, "websocket.receive": 1, "http.request": 1})
    # http.request full: 503 at once.
    server.layer.send("http.request", {"filler": True})
    with server.connect() as sock:
        sock.sendall(b"GET /full HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_until(sock, b"\r\n").startswith(b"HTTP/1.1 503 ")
    # websocket.connect full: the handshake is held and the connect retried, then refused with 503
    # at the connect timeout if the channel stayed full.
    server.layer.send("websocket.connect", {"filler": True})
    started = time.monotonic()
    thread, result = open_async(ws_url(server))
    thread.join(5)
    assert result["error"].status_code == 503 and time.monotonic() - started > 0.9
    server.receive("websocket.connect")  # the filler
    assert server.nothing_on("websocket.connect")  # no retry outlives the refusal
    # Full for a moment only: the retried connect gets in, and the handshake succeeds.
    server.layer.send("websocket.connect", {"filler": True})
    thread, result = open_async(ws_url(server))
    server.receive("websocket.connect")  # the filler: the channel has room again
    _, connect = server.receive("websocket.connect")
    server.layer.send(connect["reply_channel"], {"accept": True})
    thread.join(5)
    assert "error" not in result and result["ws"].connected
    result["ws"].close()
    # websocket.receive full: retried briefly, then closed with 1013.
    ws, message = accept(server)
    server.layer.send("websocket.receive", {"filler": True})
    ws.send("one too many")
    ws.settimeout(5)
    opcode, frame = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2], "big") == 1013
    assert "Traceback" not in server.log
