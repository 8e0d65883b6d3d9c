"""HTTP behaviour of the real server, with the test playing the application."""

from __future__ import annotations

import http.client

from .conftest import recv_all, recv_until


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
