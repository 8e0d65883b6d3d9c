"""The seed 002 tutorial project (Channels 2-4 consumers, typed in as the seed shows it) on real processes.

redis-server + ``interface-server config.asgi:application`` + two ``runworker``
processes; real WebSocket clients. Also seed 000's ChatConsumer, whose
events hop between the workers, and ``runserver``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.support import REPO, Proc, free_port, http_get, wait_for_port, ws_connect
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

TUTORIAL = Path(__file__).resolve().parent / "tutorial"


def tutorial_env(db_path: Path, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2E_")}
    env.update(E2E_DB=str(db_path), PYTHONPATH=f"{REPO}{os.pathsep}{TUTORIAL}", PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="config.settings")
    if redis_url:
        env["E2E_REDIS_URL"] = redis_url
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(TUTORIAL / "manage.py"), *args]


class Deployment:
    """redis-server, one interface server and N workers of the tutorial project."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.tmp = tmp
        self.redis = RedisServer().start()
        self.env = tutorial_env(tmp / "db.sqlite3", self.redis.url)
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.env["E2E_MARKS"] = str(self.marks)
        self.port = free_port()
        self.server = Proc([sys.executable, "-m", "interface_server", "config.asgi:application",
                            "-b", "127.0.0.1", "-p", str(self.port), "--websocket-handler-timeout", "5"],
                           self.env, tmp / "server.log", cwd=TUTORIAL)
        self.workers: list[Proc] = []
        for _ in range(workers):
            self.add_worker()
        wait_for_port(self.port)

    def add_worker(self) -> Proc:
        n = len(self.workers)
        worker = Proc(manage("runworker", "--threads", "1", "--prefetch", "0"), self.env, self.tmp / f"worker{n}.log",
                      cwd=TUTORIAL)
        worker.wait_for_output("Listening on channels")
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for proc in [self.server, *self.workers]:
            proc.stop()
        self.redis.cleanup()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    running = Deployment(tmp_path_factory.mktemp("tutorial"))
    try:
        yield running
    finally:
        running.stop()


def recv_json(ws) -> dict:
    return json.loads(ws.recv())


def test_workers_listen_for_the_application_channels(deployment):
    output = deployment.workers[0].output()
    for name in ("websocket.connect", "websocket.receive", "websocket.disconnect", "websocket.event", "http.request"):
        assert name in output


def test_room_page_is_a_django_view_through_the_workers(deployment):
    status, body = http_get(deployment.port, "/chat/lobby/")
    assert status == 200
    assert b"new WebSocket(" in body and b'"lobby"' in body


def test_two_clients_in_one_room_see_each_others_messages(deployment):
    alice = ws_connect(deployment.port, "/ws/chat/lobby/")
    bob = ws_connect(deployment.port, "/ws/chat/lobby/")
    elsewhere = ws_connect(deployment.port, "/ws/chat/kitchen/")
    try:
        for n in range(10):
            sender = alice if n % 2 else bob
            sender.send(json.dumps({"message": f"hello {n}"}))
            assert recv_json(alice) == {"message": f"hello {n}"}
            assert recv_json(bob) == {"message": f"hello {n}"}
        elsewhere.send(json.dumps({"message": "only the kitchen"}))
        assert recv_json(elsewhere) == {"message": "only the kitchen"}
        bob.close()
        alice.send(json.dumps({"message": "after bob left"}))
        assert recv_json(alice) == {"message": "after bob left"}
    finally:
        for ws in (alice, bob, elsewhere):
            ws.close()


def test_unrouted_path_is_refused(deployment):
    import websocket

    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        ws_connect(deployment.port, "/ws/nowhere/")
    assert info.value.status_code == 403


def test_seed_000_username_follows_the_connection_from_worker_to_worker(tmp_path):
    """Each event of one connection forced onto another worker: a rolling restart, then a SIGKILL."""
    running = Deployment(tmp_path, workers=1)
    try:
        ws = ws_connect(running.port, "/ws/anon/")
        assert ws.recv() == "[Welcome Anonymous!]"
        ws.send("/name ada")
        assert ws.recv() == "[set your username to ada]"
        first = running.workers[0]
        ws.send("/pid")
        assert int(ws.recv()) == first.pid
        # A deploy: a new worker starts, the old one stops gracefully; the socket stays open.
        second = running.add_worker()
        assert first.stop(signal.SIGTERM) == 0
        ws.send("hello")
        assert ws.recv() == "ada: hello"
        ws.send("/pid")
        assert int(ws.recv()) == second.pid
        ws.send("/name bob")
        assert ws.recv() == "[set your username to bob]"
        # A crash between two events: the next runs on another worker with the state saved before it.
        third = running.add_worker()
        assert second.stop(signal.SIGKILL) == -signal.SIGKILL
        ws.send("still here")
        assert ws.recv() == "bob: still here"
        ws.send("/pid")
        assert int(ws.recv()) == third.pid
        ws.close()
    finally:
        running.stop()


def test_a_worker_killed_mid_handler_closes_1011_and_disconnect_runs_elsewhere(tmp_path):
    """The handler never answers (its worker is killed): 1011 after --websocket-handler-timeout (5 s here)."""
    import websocket

    running = Deployment(tmp_path, workers=1)
    try:
        ws = ws_connect(running.port, "/ws/slow/?carol")
        other = ws_connect(running.port, "/ws/slow/?dave")
        victim = running.workers[0]
        ws.send("hi")
        assert ws.recv() == f"carol {victim.pid}"
        ws.send("hang")
        hanging = running.marks / "carol.hanging"
        wait_until(hanging.exists, 10, what="the worker to be in the handler")
        hanging.unlink()
        assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
        survivor = running.add_worker()
        other.send("hi")  # other connections are served meanwhile
        assert other.recv() == f"dave {survivor.pid}"
        ws.settimeout(15)
        started = time.monotonic()
        opcode, frame = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2], "big") == 1011
        assert 3 < time.monotonic() - started < 12
        wait_until(lambda: list(running.marks.iterdir()), 10, what="carol's disconnect() to run")
        assert [p.name for p in running.marks.iterdir()] == [f"carol.1011.{survivor.pid}"]
        other.close()
    finally:
        running.stop()


def test_runserver_serves_the_tutorial(tmp_path):
    port = free_port()
    proc = Proc(manage("runserver", "--noreload", f"127.0.0.1:{port}"), tutorial_env(tmp_path / "db.sqlite3"),
                tmp_path / "runserver.log", cwd=TUTORIAL)
    try:
        proc.wait_for_output("Quit the server with")
        wait_for_port(port)
        a, b = ws_connect(port, "/ws/chat/room1/"), ws_connect(port, "/ws/chat/room1/")
        a.send(json.dumps({"message": "hi b"}))
        assert recv_json(b) == {"message": "hi b"} and recv_json(a) == {"message": "hi b"}
        a.close()
        b.close()
        assert http_get(port, "/chat/room1/")[0] == 200
    finally:
        proc.stop()
