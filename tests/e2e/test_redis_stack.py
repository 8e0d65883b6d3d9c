"""The project behind the real stack: redis-server, the interface server, two runworker processes."""

from __future__ import annotations

import json
import signal

import pytest

from tests.e2e.support import (
    Proc,
    deployment,
    free_port,
    http_get,
    manage,
    project_env,
    ws_connect,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Yield (http port, [worker Procs]) for a running deployment of the e2e project."""
    tmp = tmp_path_factory.mktemp("e2e-redis")
    redis = RedisServer().start()
    try:
        with deployment(project_env(tmp / "db.sqlite3", redis.url), tmp) as running:
            yield running
    finally:
        redis.cleanup()


def test_django_views_over_http(stack):
    port, _ = stack
    assert http_get(port, "/") == (200, b"OK")
    assert http_get(port, "/hello/there") == (200, b"Hello world! You asked for /hello/there")
    assert http_get(port, "/nowhere/")[0] == 404
    status, body = http_get(port, "/boom/")
    assert status == 500
    assert http_get(port, "/form/", data=b"name=ada") == (200, b"POST ada 8")


def test_both_workers_share_the_requests(stack):
    port, workers = stack
    pids = {int(http_get(port, "/pid/")[1]) for _ in range(30)}
    assert pids == {worker.pid for worker in workers}


def test_websocket_echo(stack):
    port, _ = stack
    ws = ws_connect(port, "/echo/")
    try:
        for text in ("hello world", "ünïcödé", "x" * 5000):
            ws.send(text)
            assert ws.recv() == text
    finally:
        ws.close()


def chat_text(raw: str) -> str:
    return raw if not raw.startswith("{") else json.loads(raw)["text"]


def test_chat_survives_a_killed_worker(stack):
    port, workers = stack
    alice, bob = ws_connect(port, "/lobby/"), ws_connect(port, "/lobby/")
    other_room = ws_connect(port, "/kitchen/")
    try:
        for n in range(5):
            sender = alice if n % 2 else bob
            sender.send(f"before {n}")
            assert alice.recv() == f"before {n}"
            assert bob.recv() == f"before {n}"
        victim = workers[0]
        assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
        for n in range(10):
            sender = alice if n % 2 else bob
            sender.send(f"after {n}")
            assert alice.recv() == f"after {n}"
            assert bob.recv() == f"after {n}"
        carol = ws_connect(port, "/lobby/")
        carol.send("carol here")
        assert [alice.recv(), bob.recv(), carol.recv()] == ["carol here"] * 3
        carol.close()
        other_room.send("only kitchen")
        assert other_room.recv() == "only kitchen"
        alice.send("lobby again")
        assert bob.recv() == "lobby again" and alice.recv() == "lobby again"
    finally:
        for ws in (alice, bob, other_room):
            ws.close()
    assert http_get(port, "/") == (200, b"OK")


def test_runworker_exits_0_on_sigterm(stack):
    _, workers = stack
    survivor = workers[1]
    assert survivor.stop(signal.SIGTERM) == 0
    assert "Shutdown signal received" in survivor.output()


def test_runserver_noworker_with_a_separate_runworker(tmp_path):
    """Seed 003's 'Running with Channels': runserver --noworker plus runworker on Redis."""
    redis = RedisServer().start()
    env = project_env(tmp_path / "db.sqlite3", redis.url)
    port = free_port()
    server = Proc(manage("runserver", "--noworker", "--noreload", f"127.0.0.1:{port}"), env, tmp_path / "rs.log")
    worker = Proc(manage("runworker", "-v", "2"), env, tmp_path / "w.log")
    try:
        worker.wait_for_output("Listening on channels")
        server.wait_for_output("Quit the server with")
        assert http_get(port, "/hello/x") == (200, b"Hello world! You asked for /hello/x")
        ws = ws_connect(port, "/echo/")
        ws.send("via runworker")
        assert ws.recv() == "via runworker"
        ws.close()
        assert "no workers (--noworker)" in server.output()
        # -v 2 logs every consumer run with its channel and reply channel.
        worker.wait_for_output("-> chat.consumers.ws_echo")
    finally:
        server.stop()
        worker.stop()
        redis.cleanup()
