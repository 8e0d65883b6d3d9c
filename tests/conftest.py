"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session; yields the RedisServer (``.url``)."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_servers():
    """Factory: ``redis_servers(n)`` starts n fresh servers, stopped after the test."""
    started: list[RedisServer] = []

    def start(count: int = 1) -> list[RedisServer]:
        servers = [RedisServer().start() for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.cleanup()
