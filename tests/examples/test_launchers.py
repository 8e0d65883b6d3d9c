"""The example's launchers: production shape on real Redis, and a clear line when Redis is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
import websocket

from tests.examples.chat_server import CHAT, REPO, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def launcher_env(tmp_path, **extra: str) -> dict[str, str]:
    return dict(os.environ, CHAT_DB_PATH=str(tmp_path / "chat.sqlite3"), PYTHONUNBUFFERED="1",
                DJANGO_SETTINGS_MODULE="some.other.project.settings",  # the launchers must not care
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **extra)


def test_missing_redis_gives_one_clear_line(tmp_path):
    port = free_port()  # nothing listens there
    result = subprocess.run([sys.executable, "run_production.py"], cwd=CHAT, capture_output=True, text=True,
                            env=launcher_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0"), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "redis-server" in lines[0]


def test_production_shape_serves_chat_and_stops_together(tmp_path, redis_server):
    port = free_port()
    log_path = tmp_path / "launcher.log"
    with open(log_path, "wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "run_production.py", "--port", str(port)], cwd=CHAT, stdout=log,
            stderr=subprocess.STDOUT, env=launcher_env(tmp_path, REDIS_URL=redis_server.url))
    pids: list[int] = []
    try:
        def serving() -> bool:
            if launcher.poll() is not None:
                pytest.fail(f"the launcher exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/room/lobby/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        wait_until(serving, 45, "the interface server to serve the lobby page")
        pids += [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", log_path.read_text())]
        assert len(pids) == 3  # web and two workers
        assert "1 interface server, 2 worker processes" in log_path.read_text()

        # Two sockets in one room, across interface server -> Redis -> workers.
        url = f"ws://127.0.0.1:{port}/chat/lobby/?nick="
        first = websocket.create_connection(url + "ann", timeout=15)
        second = websocket.create_connection(url + "ben", timeout=15)
        first.send(json.dumps({"type": "message", "message": "over redis"}))
        for sock in (first, second):
            frame = json.loads(sock.recv())
            assert (frame["nick"], frame["message"]) == ("ann", "over redis")
        first.close()
        second.close()
    finally:
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
        launcher.wait(timeout=30)
    for pid in pids:
        def gone(pid: int = pid) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_until(gone, 15, f"process {pid} to stop with the launcher")
    assert "stopping all processes (SIGINT)" in log_path.read_text()


def test_procfile_commands_use_this_interpreter():
    sys.path.insert(0, str(CHAT))
    try:
        from procs import command_argv, read_procfile
    finally:
        sys.path.remove(str(CHAT))
    entries = read_procfile(CHAT / "Procfile")
    assert set(entries) == {"web", "worker"}
    web = command_argv(entries["web"], {"PORT": "8123"})
    assert web[:3] == [sys.executable, "-m", "interface_server"]
    assert "chatsite.asgi:channel_layer" in web and "8123" in web
    assert command_argv(entries["worker"], {})[:3] == [sys.executable, "manage.py", "runworker"]
