"""Options that change messages: --root-path, --proxy-headers, endpoints; the CLI itself."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import types

import pytest

from interface_server.cli import build_parser, parse_args
from interface_server.config import ServerConfig, build_endpoint_strings, missing_tls_support
from interface_server.server import socket_family

from .conftest import REPO, recv_until, wait_for


def test_root_path_and_proxy_headers(start_server):
    server = start_server("--root-path", "/mounted", "--proxy-headers")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    # A client claims 10.1.2.3; the (trusted, loopback) proxy appended the address it saw: 10.0.0.1.
    conn.request("GET", "/p", headers={"X-Forwarded-For": "10.1.2.3, 10.0.0.1", "X-Forwarded-Port": "8443",
                                       "X-Forwarded-Proto": "https"})
    _, message = server.receive("http.request")
    assert message["root_path"] == "/mounted"
    assert message["client"] == ["10.0.0.1", 8443]
    assert message["scheme"] == "https"
    server.layer.send(message["reply_channel"], {"status": 204})
    assert conn.getresponse().status == 204


def test_proxy_headers_from_skips_every_trusted_proxy(start_server):
    server = start_server("--proxy-headers", "--proxy-headers-from", "127.0.0.1, 10.0.0.0/8")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/p", headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.7, 10.0.0.1"})
    _, message = server.receive("http.request")
    assert message["client"] == ["192.0.2.7", 0]
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
        "unix:/tmp/a.sock", "fd:fileno=5"]
    with pytest.raises(ValueError, match="both host and port"):
        build_endpoint_strings(host="127.0.0.1")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="endpoints"):
        ServerConfig(endpoints=[])
    with pytest.raises(ValueError, match="max_body_size"):
        ServerConfig(max_body_size=0)
    with pytest.raises(ValueError, match="root_path"):
        ServerConfig(root_path="/x/")
    with pytest.raises(ValueError, match="layer_io"):
        ServerConfig(layer_io="async")


def test_layer_io_picks_the_reactor_client_only_where_the_layer_offers_one():
    from twisted.internet import task

    from asgi_backends.inmemory import ChannelLayer
    from asgi_backends.redis import RedisChannelLayer
    from interface_server.context import ServerContext
    from interface_server.reactor_sender import ReactorSender
    from interface_server.sending import Sender

    def sender_for(layer, **options):
        ctx = ServerContext(layer, ServerConfig(sender_threads=0, **options), task.Clock())
        return type(ctx.sender), ctx.receiver.client is not None

    plain = RedisChannelLayer(hosts=[("127.0.0.1", 6379)])
    assert sender_for(plain) == (ReactorSender, True)
    assert sender_for(plain, layer_io="threads") == (Sender, False)
    assert sender_for(RedisChannelLayer(hosts=["rediss://127.0.0.1:6380/0"])) == (Sender, False)
    assert sender_for(ChannelLayer()) == (Sender, False)


def test_cli_help_lists_every_option_and_bad_layer_path_fails_clearly():
    run = subprocess.run([sys.executable, "-m", "interface_server", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=30)
    assert run.returncode == 0
    # Every Daphne 1.4.2 option (daphne/cli.py), under Daphne's spelling.
    for option in ("-b", "--bind", "-p", "--port", "-u", "--unix-socket", "--fd", "-e", "--endpoint", "--access-log",
                   "-t", "--http-timeout", "--websocket_timeout", "--websocket_connect_timeout", "--ping-interval",
                   "--ping-timeout", "--root-path", "--proxy-headers", "--ws-protocol", "--force-sync", "-v",
                   "--verbosity"):
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


def test_ws_protocol_takes_several_names_as_in_daphne():
    parser = build_parser()
    for argv in (["m:layer", "--ws-protocol", "a", "b"], ["--ws-protocol", "a", "b", "m:layer"],
                 ["--ws-protocol", "a", "--ws-protocol", "b", "m:layer"]):
        args = parse_args(parser, argv)
        assert (args.channel_layer, args.ws_protocols) == ("m:layer", ["a", "b"]), argv
    with pytest.raises(SystemExit):
        parse_args(parser, ["--ws-protocol", "a"])  # no layer at all


def test_missing_tls_support_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "OpenSSL", None)  # import OpenSSL now raises ImportError
    problem = missing_tls_support(["tcp:8000", "ssl:8443:privateKey=k.pem"])
    assert "'ssl:8443:privateKey=k.pem'" in problem and "pyOpenSSL" in problem
    assert "pip install 'django-channels-worker[tls]'" in problem
    assert missing_tls_support(["tcp:8000", "unix:/tmp/x.sock"]) is None
    monkeypatch.setitem(sys.modules, "OpenSSL", types.ModuleType("OpenSSL"))
    assert missing_tls_support(["ssl:8443"]) is None


def test_ssl_endpoint_without_pyopenssl_is_one_clear_line(tmp_path):
    # Hide pyOpenSSL whether or not it is installed: this package shadows it and fails to import.
    (tmp_path / "OpenSSL").mkdir()
    (tmp_path / "OpenSSL" / "__init__.py").write_text("raise ImportError('No module named OpenSSL')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    run = subprocess.run([sys.executable, "-m", "interface_server", "asgi_backends.inmemory:ChannelLayer",
                          "-e", "ssl:0:privateKey=key.pem:certKey=cert.pem"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=30)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "pyOpenSSL" in lines[0] and "[tls]" in lines[0] and "ssl:0:" in lines[0]
    assert "Traceback" not in run.stderr + run.stdout


def test_socket_family_reads_the_family_and_leaves_the_socket_open(tmp_path):
    with socket.socket(socket.AF_INET) as inet, socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(tmp_path / "f.sock"))
        assert socket_family(inet.fileno()) == socket.AF_INET
        assert socket_family(unix.fileno()) == socket.AF_UNIX
        assert inet.fileno() >= 0 and unix.getsockname() == str(tmp_path / "f.sock")


def test_inherited_unix_socket(tmp_path, redis_server):
    from .conftest import ServerProcess

    path = tmp_path / "inherited.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(16)
    server = ServerProcess(tmp_path, redis_server.url, ["--fd", str(listener.fileno())], None,
                           pass_fds=(listener.fileno(),))
    try:
        listener.close()  # the server holds its own copy now
        assert f"unix:{path}" in server.log
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b"GET /inherited HTTP/1.1\r\nHost: x\r\n\r\n")
            _, message = server.receive("http.request")
            assert message["path"] == "/inherited" and message["client"] is None
            server.layer.send(message["reply_channel"], {"status": 200, "content": b"via fd"})
            assert recv_until(sock, b"via fd").endswith(b"via fd")
    finally:
        server.kill()
