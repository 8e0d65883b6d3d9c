"""WebSocket behaviour of the real server, with the test playing the application."""

from __future__ import annotations

import socket
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
    _, disconnect = server.receive("websocket.disconnect")
    assert disconnect == {"reply_channel": message["reply_channel"], "code": 1000, "path": "/chat/room", "order": 3}
