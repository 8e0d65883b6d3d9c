"""SIGTERM: stop accepting, close WebSockets with 1001, finish in-flight HTTP, exit 0."""

from __future__ import annotations

import http.client
import signal
import socket

import websocket

from .conftest import wait_for
from .test_websocket import accept


def test_sigterm_is_graceful(start_server):
    server = start_server()
    ws, _ = accept(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/in-flight")
    _, message = server.receive("http.request")
    server.proc.send_signal(signal.SIGTERM)
    # The WebSocket is closed with 1001 (going away).
    ws.settimeout(5)
    opcode, frame = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2], "big") == 1001
    ws.close()

    # New connections are refused.
    def refused():
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            return True
        return False

    wait_for(refused, what="listening socket closed")
    # The in-flight request still gets its response, then the process exits 0.
    assert server.proc.poll() is None
    server.layer.send(message["reply_channel"], {"status": 200, "content": b"finished"})
    response = conn.getresponse()
    assert response.read() == b"finished" and response.getheader("Connection") == "close"
    assert server.proc.wait(10) == 0
    assert "Traceback" not in server.log


def test_sigterm_does_not_wait_past_shutdown_timeout(start_server):
    server = start_server("--shutdown-timeout", "0.5")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/never-answered")
    server.receive("http.request")
    assert server.terminate() == 0
    conn.close()
