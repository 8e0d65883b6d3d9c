"""The JavaScript WebSocket bridge in headless Chromium against the real stack.

The page (a Django template loading ``channels/js/websocketbridge.js`` as a
static file) is served by the interface server and a ``runworker``; the test
stops and restarts the interface server and watches the bridge reconnect.
"""

from __future__ import annotations

import signal

import pytest

from tests.binding.live import LiveStack
from tests.e2e.support import http_get
from tests.support.browser import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = LiveStack(tmp_path_factory.mktemp("bridge")).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def page(stack):
    with Browser() as browser:
        page = browser.new_page(f"http://127.0.0.1:{stack.port}/bridge.html")
        yield page
        page.close()


def test_the_script_is_a_static_file(stack):
    status, body = http_get(stack.port, "/static/channels/js/websocketbridge.js")
    assert status == 200 and b"WebSocketBridge" in body


def test_streams_json_and_bindings(stack, page):
    page.wait_for("log.opens === 1", what="the bridge to connect")
    page.evaluate("bridge.stream('echo').send({n: 1, s: 'ünï'})")
    page.wait_for("log.echoes.length === 1", what="the echo")
    assert page.evaluate("log.echoes[0]") == {"n": 1, "s": "ünï"}
    # Frames outside any handled stream reach listen(): here the server's error frame.
    page.evaluate("bridge.send({stream: 'nowhere', payload: {}})")
    page.wait_for("log.other.length === 1", what="the error frame")
    assert page.evaluate("log.other[0]") == [None, {"error": "unknown stream 'nowhere' (streams: echo, notes)"}]
    # A model saved by a view reaches the page through its binding stream.
    assert http_get(stack.port, "/notes/new/?text=hello")[0] == 200
    page.wait_for("log.notes.length === 1", what="the binding broadcast")
    assert page.evaluate("log.notes[0]") == ["create", "hello"]


def test_reconnects_with_backoff_after_the_server_restarts(stack, page):
    page.wait_for("log.opens === 1", what="the bridge to connect")
    server = stack.server
    assert server.stop(signal.SIGTERM) == 0
    page.wait_for("log.closes === 1 && log.reconnecting >= 3", timeout=15,
                  what="the bridge to notice and retry while the server is down")
    assert page.evaluate("bridge.socket.readyState") != 1
    delays = page.evaluate("[0, 1, 2, 3, 4, 5].map(function (n) { return bridge.socket.reconnectDelay(n); })")
    assert delays[0] <= 120 and delays[-1] <= 480 and delays[-1] > delays[0]  # grows, capped (with jitter)
    # Sent while down: queued, delivered after the reconnect.
    page.evaluate("bridge.stream('echo').send({n: 2})")
    stack.start_server()
    page.wait_for("log.opens === 2", timeout=15, what="the bridge to reconnect")
    page.wait_for("log.echoes.length === 2", what="the queued frame's echo")
    assert page.evaluate("log.echoes[1]") == {"n": 2}
    # A close from the server end is followed by a reconnect too.
    page.evaluate("bridge.stream('echo').send({close: true})")
    page.wait_for("log.opens === 3", timeout=15, what="a reconnect after the server closed the socket")
    page.evaluate("bridge.stream('echo').send({n: 3})")
    page.wait_for("log.echoes.length === 3")
    # close() ends it for good.
    page.evaluate("bridge.close()")
    page.wait_for("log.closes === 3 && bridge.socket.readyState === 3")
    assert page.evaluate("log.opens") == 3
