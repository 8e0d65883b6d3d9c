"""``manage.py runserver`` on the in-memory layer, and ``runworker`` refusing that layer."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.support import (
    Proc,
    free_port,
    http_get,
    manage,
    project_env,
    wait_for_port,
    ws_connect,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runserver(tmp_path_factory):
    """runserver (with its autoreloader) on a free port; yields the port."""
    tmp = tmp_path_factory.mktemp("e2e-runserver")
    port = free_port()
    proc = Proc(manage("runserver", f"127.0.0.1:{port}"), project_env(tmp / "db.sqlite3"), tmp / "runserver.log")
    try:
        proc.wait_for_output("Quit the server with")
        wait_for_port(port)
        yield port
    finally:
        proc.stop()


def test_seed_http_consumer_and_django_views(runserver):
    assert http_get(runserver, "/hello/") == (200, b"Hello world! You asked for /hello/")
    assert http_get(runserver, "/") == (200, b"OK")
    assert http_get(runserver, "/static/chat/hello.txt") == (200, b"static hello\n")
    assert http_get(runserver, "/static/chat/missing.txt")[0] == 404


def test_websocket_echo_and_chat(runserver):
    echo = ws_connect(runserver, "/echo/")
    echo.send("hello world")
    assert echo.recv() == "hello world"
    echo.close()
    a, b = ws_connect(runserver, "/room1/"), ws_connect(runserver, "/room1/")
    a.send("hi b")
    assert b.recv() == "hi b" and a.recv() == "hi b"
    a.close()
    b.close()


def test_runworker_refuses_the_in_memory_layer(tmp_path):
    result = subprocess.run(manage("runworker"), env=project_env(tmp_path / "db.sqlite3"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot cross processes" in lines[0], result.stderr
