"""HTTP behaviour of the real server, with the test playing the application."""

from __future__ import annotations

import http.client

from .conftest import recv_all, recv_until, wait_for


def respond(server, reply_channel, status=200, content=b"OK", headers=None, more=False):
    server.layer.send(reply_channel, {"status": status, "headers": headers or [[b"content-type", b"text/plain"]],
                                      "content": content, "more_content": more})


def test_request_message_keys_and_types(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/caf%C3%A9/x?a=1&b=%20", body=b"hello", headers={"X-Dup": "1", "Content-Type": "text/plain"})
    channel, message = server.receive("http.request")
    assert channel == "http.request"
    assert set(message) >= {"reply_channel", "http_version", "method", "scheme", "path", "query_string",
                            "root_path", "headers", "body", "client", "server"}
    assert "!" in message["reply_channel"] and message["reply_channel"].startswith("interface.response.")
    assert message["http_version"] == "1.1"
    assert message["method"] == "POST"
    assert message["scheme"] == "http"
    assert message["path"] == "/café/x"
    assert message["query_string"] == b"a=1&b=%20"
    assert message["root_path"] == ""
    assert message["body"] == b"hello"
    assert message["client"][0] == "127.0.0.1" and isinstance(message["client"][1], int)
    assert message["server"] == ["127.0.0.1", server.port]
    headers = message["headers"]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
    assert [b"x-dup", b"1"] in headers and [b"content-type", b"text/plain"] in headers
    respond(server, message["reply_channel"], 201, b"made", [[b"X-Thing", b"yes"]])
    response = conn.getresponse()
    assert response.status == 201
    assert response.read() == b"made"
    assert response.getheader("X-Thing") == "yes"
    conn.close()


def test_keepalive_and_pipelined_responses_keep_request_order(server):
    sock = server.connect()
    sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
    for expected in ("/one", "/two", "/three"):
        _, message = server.receive("http.request")
        assert message["path"] == expected
        respond(server, message["reply_channel"], content=expected.encode())
    data = recv_until(sock, b"/three")
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"/one") < data.index(b"/two") < data.index(b"/three")
    # Still open for another request on the same connection.
    sock.sendall(b"GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
    _, message = server.receive("http.request")
    respond(server, message["reply_channel"], content=b"four")
    assert b"four" in recv_until(sock, b"four")
    sock.close()


def test_large_body_streams_on_body_channel(server):
    body = bytes(range(256)) * 20  # 5120 bytes, inline limit 1024
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("PUT", "/upload", body=body)
    _, message = server.receive("http.request")
    assert message["body"] == body[:1024]
    assert "?" in message["body_channel"]
    received = message["body"]
    while True:
        _, chunk = server.receive(message["body_channel"])
        assert set(chunk) == {"content", "more_content", "closed"} and chunk["closed"] is False
        received += chunk["content"]
        if not chunk["more_content"]:
            break
    assert received == body
    respond(server, message["reply_channel"], content=b"stored")
    assert conn.getresponse().read() == b"stored"


def test_chunked_request_body_is_decoded(server):
    sock = server.connect()
    sock.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    _, message = server.receive("http.request")
    assert message["body"] == b"hello world" and "body_channel" not in message
    respond(server, message["reply_channel"])
    assert b"200 OK" in recv_until(sock, b"OK")


def test_streamed_response_is_chunked_and_written_as_it_arrives(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/stream")
    _, message = server.receive("http.request")
    reply = message["reply_channel"]
    respond(server, reply, content=b"first,", more=True)
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read1() == b"first,"  # arrives before the rest is even sent
    server.layer.send(reply, {"content": b"second,", "more_content": True})
    server.layer.send(reply, {"content": b"third", "more_content": False})
    assert response.read() == b"second,third"
    # The connection is reusable after a chunked response.
    conn.request("GET", "/again")
    _, message = server.receive("http.request")
    respond(server, message["reply_channel"], content=b"again")
    assert conn.getresponse().read() == b"again"


def test_streamed_response_to_http10_closes_to_end_body(server):
    sock = server.connect()
    sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
    _, message = server.receive("http.request")
    assert message["http_version"] == "1.0"
    respond(server, message["reply_channel"], content=b"a", more=True)
    server.layer.send(message["reply_channel"], {"content": b"b", "more_content": False})
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.0 200 OK") and b"chunked" not in data.lower()
    assert data.endswith(b"\r\n\r\nab")


def test_content_length_given_by_application_is_kept(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/len")
    _, message = server.receive("http.request")
    reply = message["reply_channel"]
    respond(server, reply, content=b"ab", more=True, headers=[[b"Content-Length", b"4"]])
    server.layer.send(reply, {"content": b"cd", "more_content": False})
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") is None
    assert response.read() == b"abcd"


def test_head_sends_length_but_no_body(server):
    sock = server.connect()
    sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    _, message = server.receive("http.request")
    assert message["method"] == "HEAD"
    respond(server, message["reply_channel"], content=b"twelve bytes")
    _, message = server.receive("http.request")
    assert message["path"] == "/after"
    respond(server, message["reply_channel"], content=b"next")
    data = recv_until(sock, b"next")
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 12" in first
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body bytes between the two responses


def test_expect_100_continue(server):
    sock = server.connect()
    sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert recv_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"abcde")
    _, message = server.receive("http.request")
    assert message["body"] == b"abcde"
    respond(server, message["reply_channel"])
    assert b"200 OK" in recv_until(sock, b"OK")


def test_connection_close_is_honoured(server):
    sock = server.connect()
    sock.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _, message = server.receive("http.request")
    respond(server, message["reply_channel"])
    data = recv_all(sock)
    assert b"Connection: close" in data and data.endswith(b"OK")


def test_http_disconnect_when_client_leaves_early(server):
    sock = server.connect()
    sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    _, message = server.receive("http.request")
    sock.close()
    _, disconnect = server.receive("http.disconnect")
    assert disconnect == {"reply_channel": message["reply_channel"], "path": "/slow"}
    # A late reply for the gone client is dropped quietly; the server carries on.
    respond(server, message["reply_channel"])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/next")
    _, message = server.receive("http.request")
    respond(server, message["reply_channel"])
    assert conn.getresponse().status == 200
    assert "Traceback" not in server.log


def test_no_response_within_http_timeout_gives_503(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/never")
    _, message = server.receive("http.request")
    response = conn.getresponse()  # the shared server's --http-timeout is 1.5s
    assert response.status == 503
    respond(server, message["reply_channel"])  # too late: dropped


def test_access_log_lines(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/logged?q=1")
    _, message = server.receive("http.request")
    respond(server, message["reply_channel"], status=404, content=b"nope")
    assert conn.getresponse().status == 404
    wait_for(lambda: '"GET /logged?q=1 HTTP/1.1" 404 4' in server.access_log.read_text(), what="access log line")


def test_idle_keepalive_connection_is_closed(start_server):
    server = start_server("--keepalive-timeout", "0.3")
    with server.connect() as sock:
        sock.sendall(b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
        _, message = server.receive("http.request")
        respond(server, message["reply_channel"])
        data = recv_all(sock)  # returns once the server closes the idle connection
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"OK")
