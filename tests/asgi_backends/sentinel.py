"""A real Redis Sentinel for tests: ``redis-server --sentinel`` on a free port."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import redis

from asgi_backends.conformance import wait_for
from tests.support.redis_server import free_port


@contextlib.contextmanager
def running_sentinel(master_port: int, directory, settings: str = ""):
    """Run a real ``redis-server --sentinel`` monitoring 127.0.0.1:master_port as "mymaster".

    Yields ``(port, client)``: the sentinel's port and a redis-py client of it,
    once it answers for "mymaster". ``directory`` holds its config file.
    """
    port = free_port()
    config = directory / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n{settings}"
    )
    process = subprocess.Popen(
        [shutil.which("redis-server"), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(port=port, socket_timeout=1)

    def answers():
        try:
            return client.sentinel_get_master_addr_by_name("mymaster")
        except redis.ConnectionError:
            return None

    try:
        wait_for(answers, timeout=10)
        yield port, client
    finally:
        client.close()
        process.terminate()
        process.wait(10)
