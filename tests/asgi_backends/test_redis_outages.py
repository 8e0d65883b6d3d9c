"""The Redis layer through outages: restarts, and Sentinel failovers."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from asgi_backends.conformance import wait_for
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.redis import RedisChannelLayer, RedisSentinelChannelLayer
from tests.asgi_backends.sentinel import running_sentinel


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


# -- outages ----------------------------------------------------------------------


def test_outage_raises_then_reconnects(redis_servers):
    (server,) = redis_servers(1)
    layer = RedisChannelLayer(hosts=[server.url], prefix="rt:", blocking_timeout=1)
    layer.send("rt.out", {"n": 1})
    layer.group_add("rt-group", "rt.out")
    server.stop()
    for call in (
        lambda: layer.send("rt.out", {"n": 2}),
        lambda: layer.receive(["rt.out"]),
        lambda: layer.receive(["rt.out"], block=True),
        lambda: layer.send_batch([("rt.out", {"n": 2}), ("rt.other", {"n": 2})]),
        lambda: layer.receive_batch(["rt.out"], 5),
        lambda: layer.receive_batch(["rt.out", "rt.other"], 5, block=True),
        lambda: layer.send_group("rt-group", {"n": 3}),
        lambda: layer.group_channels("rt-group"),
        layer.flush,
    ):
        start = time.monotonic()
        with pytest.raises(LayerUnavailable, match="unreachable"):
            call()
        assert time.monotonic() - start < 5
    server.start()
    # Fresh server: scripts are reloaded, pooled connections replaced.
    layer.send("rt.out", {"n": 4})
    assert layer.receive(["rt.out"], block=True) == ("rt.out", {"n": 4})
    assert layer.send_batch([("rt.out", {"n": 5})]) == [None]
    assert layer.receive_batch(["rt.out"], 5, block=True) == [("rt.out", {"n": 5})]
    layer.close()


def test_blocked_receive_during_restart(redis_servers):
    (server,) = redis_servers(1)
    layer = RedisChannelLayer(hosts=[server.url], prefix="rt:", blocking_timeout=3)
    outcome = []

    def receive():
        try:
            outcome.append(layer.receive(["rt.blocked"], block=True))
        except LayerUnavailable as exc:
            outcome.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    probe = redis.Redis(port=server.port)
    wait_for(lambda: probe.info("clients")["blocked_clients"] == 1)
    probe.close()
    server.restart()
    thread.join(10)
    assert len(outcome) == 1
    # Either the pop failed clearly or it timed out after a transparent reconnect.
    assert isinstance(outcome[0], LayerUnavailable) or outcome[0] == (None, None)
    layer.send("rt.blocked", {"ok": 1})
    assert layer.receive(["rt.blocked"], block=True) == ("rt.blocked", {"ok": 1})
    layer.close()


# -- Sentinel ---------------------------------------------------------------------


@pytest.fixture
def sentinel(redis_server, tmp_path):
    with running_sentinel(redis_server.port, tmp_path) as (port, _):
        yield port


def test_sentinel_layer(sentinel, redis_server, raw):
    layer = RedisSentinelChannelLayer(sentinels=[("127.0.0.1", sentinel)], services="mymaster", prefix="rt:")
    layer.send("rt.sentinel", {"via": "sentinel"})
    assert raw.llen("rt:rt.sentinel") == 1  # landed on the master Sentinel named
    assert layer.receive(["rt.sentinel"], block=True) == ("rt.sentinel", {"via": "sentinel"})
    layer.group_add("rt-group", "rt.sentinel")
    layer.send_group("rt-group", {"g": 1})
    assert layer.receive(["rt.sentinel"]) == ("rt.sentinel", {"g": 1})
    layer.flush()
    layer.close()


def test_sentinel_config_errors():
    with pytest.raises(TypeError, match="hosts"):
        RedisSentinelChannelLayer(sentinels=[("127.0.0.1", 1)], hosts=["redis://x"])
    with pytest.raises(TypeError, match="sentinels"):
        RedisSentinelChannelLayer(sentinels="127.0.0.1:26379")


def test_sentinel_layer_follows_failover(redis_servers, tmp_path):
    master, replica = redis_servers(2)
    master_client = redis.Redis(port=master.port)
    master_client.config_set("repl-diskless-sync-delay", 0)  # default: wait 5 s for more replicas
    master_client.close()
    replica_client = redis.Redis(port=replica.port)
    replica_client.replicaof("127.0.0.1", master.port)
    wait_for(lambda: replica_client.info("replication")["master_link_status"] == "up", timeout=15)
    settings = "sentinel down-after-milliseconds mymaster 300\nsentinel failover-timeout mymaster 2000\n"
    with running_sentinel(master.port, tmp_path, settings) as (port, sentinel_client):
        wait_for(lambda: sentinel_client.sentinel_slaves("mymaster"), timeout=10)
        layer = RedisSentinelChannelLayer(sentinels=[("127.0.0.1", port)], services=["mymaster"], prefix="rt:")
        layer.send("rt.failover", {"n": 1})
        master.stop()
        promoted = lambda: sentinel_client.sentinel_get_master_addr_by_name("mymaster")[1] == replica.port  # noqa: E731
        wait_for(promoted, timeout=20, interval=0.1)

        def sends():
            try:
                layer.send("rt.failover", {"n": 2})
                return True
            except LayerUnavailable:
                return False  # during the switch: a clear error, then the new master

        wait_for(sends, timeout=10, interval=0.1)
        assert replica_client.info("replication")["role"] == "master"
        got = [layer.receive(["rt.failover"])[1] for _ in range(2)]
        # n=1 is there too if replication (asynchronous) copied it before the stop.
        assert {"n": 2} in got
        layer.close()
    replica_client.close()
