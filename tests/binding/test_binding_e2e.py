"""End to end: saves in other processes reach WebSocket clients through the real stack.

Processes: the interface server, one ``runworker`` (same-machine layer, no
server needed) and short-lived ``manage.py shell`` processes that save. The
same stack also shows an origin check refusing a handshake with HTTP 403.
"""

from __future__ import annotations

import json

import pytest
import websocket

from tests.e2e.support import http_get, ws_connect

from .live import LiveStack, run_manage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = LiveStack(tmp_path_factory.mktemp("binding-e2e")).start()
    try:
        yield stack
    finally:
        stack.stop()


def next_payload(ws):
    frame = json.loads(ws.recv())
    assert frame["stream"] == "notes", frame
    return frame["payload"]


def test_saves_from_a_shell_a_view_and_a_client_reach_the_sockets(stack):
    watcher = ws_connect(stack.port, "/notes/")
    writer = ws_connect(stack.port, "/notes/")
    try:
        # A save in a separate process (no worker involved in the save).
        run_manage(stack.env, "shell", "-c", "from live.models import Note; Note.objects.create(text='from shell')")
        for ws in (watcher, writer):
            payload = next_payload(ws)
            summary = (payload["action"], payload["data"]["text"], payload["model"])
            assert summary == ("create", "from shell", "live.note")
        # A save inside a Django view run by the worker.
        status, body = http_get(stack.port, "/notes/new/?text=from+view")
        assert status == 200, body
        payload = next_payload(watcher)
        assert (payload["action"], payload["pk"], payload["data"]["text"]) == ("create", int(body), "from view")
        next_payload(writer)
        # An inbound request from one client, applied by the worker, broadcast to both.
        writer.send(json.dumps({"stream": "notes", "payload": {"action": "update", "pk": int(body),
                                                                "data": {"text": "edited"}}}))
        for ws in (watcher, writer):
            payload = next_payload(ws)
            assert (payload["action"], payload["data"]["text"]) == ("update", "edited")
        # A refused request is answered to its sender only.
        writer.send(json.dumps({"stream": "notes", "payload": {"action": "delete", "pk": int(body)}}))
        assert next_payload(writer) == {"error": "permission denied for delete", "action": "delete", "pk": int(body)}
        watcher.send(json.dumps({"stream": "notes", "payload": {"action": "create", "data": {"text": "last"}}}))
        assert next_payload(watcher)["data"]["text"] == "last"  # nothing else was queued for the watcher
    finally:
        watcher.close()
        writer.close()


def test_origin_check_refuses_the_handshake_with_403(stack):
    url = f"ws://127.0.0.1:{stack.port}/guarded/"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=10, origin="http://evil.example")
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=10, suppress_origin=True)
    ws = websocket.create_connection(url, timeout=10, origin=f"http://127.0.0.1:{stack.port}")
    try:
        ws.send(json.dumps({"n": 1}))
        assert json.loads(ws.recv()) == {"echo": {"n": 1}}
    finally:
        ws.close()
