"""Bad input gets the proper error on its own connection; everyone else is served."""

from __future__ import annotations

import http.client
import threading

import pytest

from .conftest import recv_all, wait_for


def serve_one(server):
    """A well-behaved request still works (the server survived)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/fine")
    _, message = server.receive("http.request")
    server.layer.send(message["reply_channel"], {"status": 200, "content": b"fine"})
    assert conn.getresponse().read() == b"fine"


H = b"Host: x\r\n"


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /x HTTP/1.1 extra\r\n" + H + b"\r\n", 400),
    (b"G@T /x HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET x HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET /x HTTP/2.0\r\n\r\n", 505),
    (b"GET /x HTTP/1.1\r\n" + H + b"No colon here\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /x HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n" + H + b"X Test: 1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n" + H + b"X-Foo: a\rX-Injected: yes\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\nX-Smuggle: y\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\nHost: x\n\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: nope\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: " + b"9" * 4301 + b"\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello", 400),
    (b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: 300000\r\n\r\n", 413),
    (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    (b"GET /x HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
    (b"GET /x HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 5000, 431),
])
def test_bad_request_gets_its_status_and_server_keeps_serving(server, raw, status):
    with server.connect() as sock:
        sock.sendall(raw)
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:100]
    assert b"Connection: close" in data
    serve_one(server)
    assert server.nothing_on("http.request")
    assert "Traceback" not in server.log


def test_chunked_body_over_limit_gets_413(server):
    with server.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 50000 + b"x" * 50000 + b"\r\n"

        def send():
            try:
                for _ in range(5):
                    sock.sendall(chunk)
            except OSError:
                pass  # the server closes while we still write

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        # The application reads the streamed body until the server marks it closed.
        _, message = server.receive("http.request")
        while True:
            _, part = server.receive(message["body_channel"])
            if not part["more_content"]:
                break
        assert part["closed"] is True
        _, disconnect = server.receive("http.disconnect")
        assert disconnect["reply_channel"] == message["reply_channel"]
        data = recv_all(sock)
        assert data.startswith(b"HTTP/1.1 413 ")
        sender.join(5)
    serve_one(server)
    assert "Traceback" not in server.log


def test_invalid_response_from_application_gives_500(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/bad-app")
    _, message = server.receive("http.request")
    server.layer.send(message["reply_channel"], {"status": 200, "headers": [[b"X-Evil", b"a\r\nSet-Cookie: x"]]})
    assert conn.getresponse().status == 500
    wait_for(lambda: "line break" in server.log, what="the bad response logged")
    serve_one(server)
    assert "Traceback" not in server.log


def test_slow_head_gets_408_and_idle_connections_are_closed(start_server):
    server = start_server("--request-head-timeout", "0.5")
    idle = server.connect()
    slow = server.connect()
    slow.sendall(b"GET / HTTP/1.1\r\n")
    assert recv_all(idle) == b""  # never sent a byte: closed at the head deadline, nothing said
    assert recv_all(slow).startswith(b"HTTP/1.1 408 ")
    serve_one(server)
