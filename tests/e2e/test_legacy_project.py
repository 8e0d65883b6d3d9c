"""A project written exactly as for Channels 1.1.8 runs unchanged: its own tests, production shape, runserver.

``legacy_project/`` imports ``route``/``include`` from the ``channels``
package top, names the historical backends (``asgi_redis``, ``asgiref``),
relies on ``runworker`` serving its JavaScript with ``DEBUG`` on, hooks
``worker_process_ready`` and has ``ChannelTestCase`` tests using
``WSClient`` the 1.x way. Nothing in it was edited for this project.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

import pytest

from tests.e2e.support import REPO, Proc, free_port, http_get, wait_for_port, ws_connect
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

LEGACY = REPO / "tests" / "e2e" / "legacy_project"
STREAM = "/liveblog/news/stream/"


def legacy_env(tmp_path, redis_url: str | None = None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEGACY_", "E2E_"))}
    env.update(LEGACY_DB=str(tmp_path / "db.sqlite3"), PYTHONPATH=f"{REPO}{os.pathsep}{LEGACY}",
               PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="liveblog.settings")
    if redis_url:
        env["LEGACY_REDIS_URL"] = redis_url
    return env


def legacy_manage(*args: str) -> list[str]:
    return [sys.executable, str(LEGACY / "manage.py"), *args]


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(legacy_manage(*args), cwd=LEGACY, env=env, capture_output=True, text=True, timeout=120)


def post(port: int, path: str, **fields: str) -> tuple[int, bytes]:
    return http_get(port, path, data=urllib.parse.urlencode(fields).encode())


def check_site(port: int) -> None:
    """What a browser of the live blog does: page, its script, a stream, a post through HTTP and one through the socket."""
    status, page = http_get(port, "/")
    assert status == 200 and b'<script src="/static/posts/live.js">' in page
    status, script = http_get(port, "/static/posts/live.js")
    assert status == 200 and b"new WebSocket" in script
    assert http_get(port, "/static/posts/missing.js")[0] == 404
    reader, writer = ws_connect(port, STREAM), ws_connect(port, STREAM)
    try:
        assert post(port, "/liveblog/news/post/", body="over http") == (200, b"queued")
        assert json.loads(reader.recv()) == {"slug": "news", "body": "over http", "user": None}
        assert json.loads(writer.recv())["body"] == "over http"
        writer.send(json.dumps({"body": "over the socket"}))
        assert json.loads(reader.recv()) == {"slug": "news", "body": "over the socket", "user": None}
    finally:
        reader.close()
        writer.close()


def test_its_own_channel_test_case_suite_passes(tmp_path):
    env = legacy_env(tmp_path)
    check = run_manage(env, "check")
    assert check.returncode == 0, check.stderr
    result = run_manage(env, "test", "posts", "-v", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 8 tests" in result.stderr and "OK" in result.stderr


def test_production_shape_serves_static_files_through_runworker(tmp_path):
    redis = RedisServer().start()
    env = legacy_env(tmp_path, redis.url)
    port = free_port()
    procs = []
    try:
        assert run_manage(env, "migrate", "-v", "0").returncode == 0
        procs.append(Proc([sys.executable, "-m", "interface_server", "liveblog.asgi:channel_layer",
                           "-b", "127.0.0.1", "-p", str(port)], env, tmp_path / "server.log", cwd=LEGACY))
        worker = Proc(legacy_manage("runworker"), env, tmp_path / "worker.log", cwd=LEGACY)
        procs.append(worker)
        worker.wait_for_output("Listening on channels")
        assert "posts: worker process ready (Worker)" in worker.output()
        assert "serving static files (DEBUG)" in worker.output()
        wait_for_port(port)
        check_site(port)
    finally:
        for proc in procs:
            proc.stop()
        redis.cleanup()
    assert "Traceback" not in worker.output(), worker.output()


@pytest.mark.parametrize("extra, threads", [((), 4), (("--nothreading",), 1)])
def test_runserver_serves_the_same_site(tmp_path, extra, threads):
    env = legacy_env(tmp_path)
    assert run_manage(env, "migrate", "-v", "0").returncode == 0
    port = free_port()
    proc = Proc(legacy_manage("runserver", f"127.0.0.1:{port}", "--noreload", *extra), env,
                tmp_path / "runserver.log", cwd=LEGACY)
    try:
        proc.wait_for_output("Quit the server with")
        assert f"{threads} worker thread(s)" in proc.output()
        wait_for_port(port)
        check_site(port)
    finally:
        proc.stop()
