"""A Redis restart under a running deployment: clear errors during it, service after it, no process lost."""

from __future__ import annotations

import time
import urllib.error

import pytest

from tests.e2e.support import deployment, http_get, project_env, ws_connect
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def poll_status(port: int, path: str, wanted: int, timeout: float) -> list[int]:
    """GET ``path`` until it answers ``wanted``; return every status seen (-1 for a dropped connection)."""
    seen: list[int] = []

    def answered() -> bool:
        try:
            seen.append(http_get(port, path)[0])
        except (OSError, urllib.error.URLError):
            seen.append(-1)
        return seen[-1] == wanted

    wait_until(answered, timeout, what=f"GET {path} answering {wanted} (saw {seen[-10:]})", interval=0.1)
    return seen


def test_deployment_rides_out_a_redis_restart(tmp_path):
    redis = RedisServer().start()
    try:
        with deployment(project_env(tmp_path / "db.sqlite3", redis.url), tmp_path) as (port, workers):
            assert http_get(port, "/") == (200, b"OK")

            redis.stop()
            # While Redis is away the interface server answers at once with 503
            # instead of hanging until the HTTP timeout.
            started = time.monotonic()
            status, _ = http_get(port, "/")
            assert status == 503
            assert time.monotonic() - started < 10

            redis.start()
            poll_status(port, "/", 200, timeout=30)
            ws = ws_connect(port, "/echo/")
            try:
                ws.send("after the restart")
                assert ws.recv() == "after the restart"
            finally:
                ws.close()
            # The workers reconnect by themselves (each after its own backoff): both serve again.
            expected = {worker.pid for worker in workers}
            pids: set[int] = set()
            deadline = time.monotonic() + 30
            while pids != expected and time.monotonic() < deadline:
                pids.add(int(http_get(port, "/pid/")[1]))
            assert pids == expected
            assert all(worker.popen.poll() is None for worker in workers)
    finally:
        redis.cleanup()
