"""Options that change messages: --root-path, --proxy-headers, endpoints; the CLI itself."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys

import pytest

from interface_server.config import ServerConfig, build_endpoint_strings

from .conftest import REPO, wait_for


def test_root_path_and_proxy_headers(start_server):
    server = start_server("--root-path", "/mounted", "--proxy-headers")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/p", headers={"X-Forwarded-For": "10.1.2.3, 10.0.0.1", "X-Forwarded-Port": "8443",
                                       "X-Forwarded-Proto": "https"})
    _, message = server.receive("http.request")
    assert message["root_path"] == "/mounted"
    assert message["client"] == ["10.1.2.3", 8443]
    assert message["scheme"] == "https"
    server.layer.send(message["reply_channel"], {"status": 204})
    assert conn.getresponse().status == 204


def test_forwarded_headers_ignored_without_proxy_headers(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/p", headers={"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"})
    _, message = server.receive("http.request")
    assert message["client"][0] == "127.0.0.1" and message["scheme"] == "http"
    server.layer.send(message["reply_channel"], {"status": 204})
    assert conn.getresponse().status == 204


def test_unix_socket_endpoint(start_server, tmp_path):
    path = tmp_path / "s.sock"
    server = start_server("-e", f"unix:{path}")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET /unix HTTP/1.1\r\nHost: x\r\n\r\n")
        _, message = server.receive("http.request")
        assert message["client"] is None and message["path"] == "/unix"
        server.layer.send(message["reply_channel"], {"status": 200, "content": b"via unix"})
        assert sock.recv(4096).endswith(b"via unix")
    assert f"unix:{path}" in server.log


def test_build_endpoint_strings():
    assert build_endpoint_strings("127.0.0.1", 8000) == ["tcp:port=8000:interface=127.0.0.1"]
    assert build_endpoint_strings("::1", 8000) == [r"tcp:port=8000:interface=\:\:1"]
    assert build_endpoint_strings(unix_socket="/tmp/a.sock", file_descriptor=5) == [
        "unix:/tmp/a.sock", "fd:domain=INET:fileno=5"]
    with pytest.raises(ValueError, match="both host and port"):
        build_endpoint_strings(host="127.0.0.1")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="endpoints"):
        ServerConfig(endpoints=[])
    with pytest.raises(ValueError, match="max_body_size"):
        ServerConfig(max_body_size=0)
    with pytest.raises(ValueError, match="root_path"):
        ServerConfig(root_path="/x/")


def test_cli_help_lists_every_option_and_bad_layer_path_fails_clearly():
    run = subprocess.run([sys.executable, "-m", "interface_server", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=30)
    assert run.returncode == 0
    for option in ("--bind", "--port", "--unix-socket", "--fd", "--endpoint", "--access-log", "--http-timeout",
                   "--websocket_timeout", "--ping-interval", "--ping-timeout", "--root-path", "--proxy-headers",
                   "--ws-protocol", "--verbosity"):
        assert option in run.stdout
    run = subprocess.run([sys.executable, "-m", "interface_server", "no_such_module_x:layer"], capture_output=True,
                         text=True, cwd=REPO, timeout=30)
    assert run.returncode == 2 and "no_such_module_x" in run.stderr and "Traceback" not in run.stderr


def test_inherited_file_descriptor_and_verbose_request_lines(tmp_path, redis_server):
    from .conftest import ServerProcess

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    server = ServerProcess(tmp_path, redis_server.url, ["--fd", str(listener.fileno()), "-v", "2"], None,
                           pass_fds=(listener.fileno(),))
    try:
        listener.close()  # the server holds its own copy now
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/via-fd")
        _, message = server.receive("http.request")
        assert message["server"] == ["127.0.0.1", port]
        server.layer.send(message["reply_channel"], {"status": 200, "content": b"fd"})
        assert conn.getresponse().read() == b"fd"
        conn.close()
        wait_for(lambda: "HTTP GET /via-fd from" in server.log, what="-v 2 request line")
    finally:
        server.kill()
