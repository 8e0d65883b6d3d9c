"""Redis-specific behaviour of the Redis layer, on real redis-server processes."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import threading
import time

import pytest
import redis

from asgi_backends.conformance import wait_for
from asgi_backends.exceptions import ChannelFull, LayerUnavailable
from asgi_backends.redis import RedisChannelLayer, RedisSentinelChannelLayer
from tests.support.redis_server import free_port


@pytest.fixture
def layer(redis_server):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:")
    yield layer
    layer.flush()
    layer.close()


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def names_on_distinct_shards(layer, count, stem="spread"):
    """Return one channel name per shard for ``count`` shards."""
    found = {}
    i = 0
    while len(found) < count:
        name = f"{stem}{i}"
        found.setdefault(layer._route(name)[0].label, name)
        i += 1
    return list(found.values())


# -- configuration ----------------------------------------------------------------


def test_hosts_as_tuples_and_urls(redis_server):
    for hosts in ([("127.0.0.1", redis_server.port)], [redis_server.url]):
        layer = RedisChannelLayer(hosts=hosts, prefix="rt:")
        layer.send("rt.cfg", {"ok": True})
        assert layer.receive(["rt.cfg"]) == ("rt.cfg", {"ok": True})
        layer.close()


@pytest.mark.parametrize("hosts", [["http://x"], [("h",)], [123], [], ["redis://h:1", ("h", 1)]])
def test_bad_hosts(hosts):
    with pytest.raises((TypeError, ValueError)):
        RedisChannelLayer(hosts=hosts)


def test_socket_timeout_must_exceed_blocking_timeout():
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisChannelLayer(hosts=["redis://127.0.0.1:1"], blocking_timeout=5, connection_kwargs={"socket_timeout": 5})
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1"], blocking_timeout=7)
    # redis-py's default 5 s would cut a 7 s BLPOP short.
    assert layer._shards[0].pool.connection_kwargs["socket_timeout"] > 7


def test_blocking_longer_than_redis_py_default_socket_timeout(redis_server):
    # A pop of 5.5 s outlives redis-py's 5 s default socket timeout; it must
    # time out cleanly and leave the connection usable.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", blocking_timeout=5.5)
    start = time.monotonic()
    assert layer.receive(["rt.long"], block=True) == (None, None)
    assert time.monotonic() - start >= 5.4
    layer.send("rt.long", {"after": 1})
    assert layer.receive(["rt.long"], block=True) == ("rt.long", {"after": 1})
    layer.close()


# -- storage layout ---------------------------------------------------------------


def test_process_specific_channels_share_one_list(layer, raw):
    names = [layer.new_channel("rt.daphne!") for _ in range(5)]
    for name in names:
        layer.send(name, {"n": name})
    assert raw.llen("rt:rt.daphne!") == 5
    assert raw.exists(*[f"rt:{name}" for name in names]) == 0


def test_list_keys_lapse_after_expiry(redis_server, raw):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", expiry=2)
    layer.send("rt.ttl", {"x": 1})
    assert 0 < raw.pttl("rt:rt.ttl") <= 4000
    layer.flush()


def test_flush_leaves_other_prefixes(layer, redis_server, raw):
    other = RedisChannelLayer(hosts=[redis_server.url], prefix="other[x]:")
    other.send("rt.keep", {"x": 1})
    layer.send("rt.gone", {"x": 1})
    layer.flush()
    assert raw.exists("rt:rt.gone") == 0
    assert other.receive(["rt.keep"]) == ("rt.keep", {"x": 1})
    other.flush()


def test_scripts_reloaded_after_script_flush(layer, raw):
    layer.send("rt.script", {"n": 1})
    raw.script_flush()
    layer.send("rt.script", {"n": 2})
    assert [layer.receive(["rt.script"])[1]["n"] for _ in range(2)] == [1, 2]


def test_send_group_applies_each_members_capacity(redis_server):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", capacity=5, channel_capacity={"rt.small": 1})
    layer.group_add("rt-group", "rt.small")
    layer.group_add("rt-group", "rt.large")
    for _ in range(3):
        layer.send_group("rt-group", {"x": 1})
    assert layer.channel_statistics("rt.small")["messages_pending"] == 1
    assert layer.channel_statistics("rt.large")["messages_pending"] == 3
    assert layer.channel_statistics("rt.small")["channel_full_count"] == 2
    layer.flush()


def test_concurrent_burst_within_pool(redis_server):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", pool_size=8, capacity=1000)
    errors = []

    def work(n):
        try:
            for i in range(20):
                layer.send("rt.burst", {"n": n, "i": i})
                layer.receive(["rt.burst"], block=True)
        except Exception as exc:  # collected and reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    layer.flush()


# -- encryption -------------------------------------------------------------------


def test_messages_encrypted_at_rest(redis_server, raw):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", symmetric_encryption_keys=["s3cret"])
    layer.send("rt.secret", {"card": "4111-1111-1111-1111", "blob": b"PLAINBYTES"})
    stored = raw.lindex("rt:rt.secret", 0)
    assert b"4111" not in stored and b"PLAINBYTES" not in stored and b"card" not in stored
    assert layer.receive(["rt.secret"]) == ("rt.secret", {"card": "4111-1111-1111-1111", "blob": b"PLAINBYTES"})
    layer.flush()


def test_key_rotation(redis_server, caplog):
    def make(keys):
        return RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", symmetric_encryption_keys=keys)

    old, rotated, new_only, plain = make(["old"]), make(["new", "old"]), make(["new"]), make(None)
    old.send("rt.rot", {"from": "old"})
    assert rotated.receive(["rt.rot"]) == ("rt.rot", {"from": "old"})  # old key still decrypts
    rotated.send("rt.rot", {"from": "rotated"})
    assert new_only.receive(["rt.rot"]) == ("rt.rot", {"from": "rotated"})  # first key encrypts
    rotated.send("rt.rot", {"from": "rotated"})
    with caplog.at_level(logging.ERROR, logger="asgi_backends.redis.layer"):
        assert old.receive(["rt.rot"]) == (None, None)  # cannot decrypt: dropped, logged
        rotated.send("rt.rot", {"from": "rotated"})
        assert plain.receive(["rt.rot"]) == (None, None)
    assert len([r for r in caplog.records if "Dropped" in r.getMessage()]) == 2
    old.flush()


# -- sharding ---------------------------------------------------------------------


@pytest.fixture
def three(redis_servers):
    servers = redis_servers(3)
    layer = RedisChannelLayer(hosts=[s.url for s in servers], prefix="rt:")
    clients = [redis.Redis.from_url(s.url) for s in servers]
    yield servers, layer, clients
    for client in clients:
        client.close()
    layer.close()


def test_sharding_spreads_channels(three):
    servers, layer, clients = three
    for i in range(60):
        layer.send(f"rt.shard{i}", {"i": i})
    counts = [len(list(client.scan_iter(match="rt:rt.shard*"))) for client in clients]
    assert sum(counts) == 60 and all(count >= 5 for count in counts), counts
    for i in range(60):
        assert layer.receive([f"rt.shard{i}"]) == (f"rt.shard{i}", {"i": i})


def test_process_specific_and_single_reader_pinned(three):
    servers, layer, clients = three
    # A second process with the hosts listed in another order routes identically.
    other = RedisChannelLayer(hosts=[s.url for s in reversed(servers)], prefix="rt:")
    replies = [layer.new_channel("rt.reply!") for _ in range(30)]
    for name in replies:
        other.send(name, {"to": name})
    holders = [client.llen("rt:rt.reply!") for client in clients]
    assert sorted(holders) == [0, 0, 30]
    got = {layer.receive(["rt.reply!"])[0] for _ in range(30)}
    assert got == set(replies)
    bodies = [layer.new_channel("rt.body?") for _ in range(30)]
    for name in bodies:
        other.send(name, {"b": 1})
    on = [sum(client.exists(f"rt:{name}") for name in bodies) for client in clients]
    assert sum(on) == 30 and all(on), on  # spread, yet each found again below
    for name in bodies:
        assert layer.receive([name]) == (name, {"b": 1})
    other.close()


def test_blocking_receive_across_shards(three):
    servers, layer, clients = three
    names = names_on_distinct_shards(layer, 3)
    receiver = RedisChannelLayer(hosts=[s.url for s in servers], prefix="rt:", blocking_timeout=5)
    for target in names:
        result = []
        thread = threading.Thread(target=lambda: result.append(receiver.receive(names, block=True)))
        thread.start()
        time.sleep(0.05)  # let the pops start; correctness does not depend on it
        sent = time.monotonic()
        layer.send(target, {"to": target})
        thread.join(5)
        assert result == [(target, {"to": target})]
        assert time.monotonic() - sent < 2
    # The cancelled pops took nothing, put back nothing twice: all lists empty.
    assert sum(client.llen(f"rt:{name}") for client in clients for name in names) == 0
    assert receiver.receive(names) == (None, None)
    receiver.close()


def test_blocking_across_shards_loses_nothing_under_races(three):
    servers, layer, clients = three
    names = names_on_distinct_shards(layer, 3, stem="race")
    receiver = RedisChannelLayer(hosts=[s.url for s in servers], prefix="rt:", blocking_timeout=2, capacity=1000)
    total = 300
    got = []

    def receive():
        while len(got) < total:
            channel, message = receiver.receive(names, block=True)
            if channel is not None:
                got.append(message["i"])

    thread = threading.Thread(target=receive)
    thread.start()
    for i in range(total):
        layer.send(names[i % 3], {"i": i})
    thread.join(20)
    assert sorted(got) == list(range(total))
    receiver.close()


def test_groups_span_shards(three):
    servers, layer, clients = three
    members = [f"rt.gm{i}" for i in range(30)] + [layer.new_channel("rt.gp!") for _ in range(5)]
    for name in members:
        layer.group_add("rt-group", name)
    assert sorted(layer.group_channels("rt-group")) == sorted(members)
    assert sum(1 for client in clients if client.exists("rt:group:rt-group")) == 3
    layer.send_group("rt-group", {"all": True})
    got = []
    for name in members[:30]:
        got.append(layer.receive([name])[0])
    while True:
        channel, _ = layer.receive(["rt.gp!"])
        if channel is None:
            break
        got.append(channel)
    assert sorted(got) == sorted(members)
    stats = layer.global_statistics()
    assert stats["messages_count"] == 35


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


def test_channel_full_is_layer_attribute(redis_server):
    small = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", capacity=1)
    small.send("rt.full", {"x": 1})
    with pytest.raises(small.ChannelFull):
        small.send("rt.full", {"x": 2})
    assert small.ChannelFull is ChannelFull
    small.flush()
    small.close()


# -- Sentinel ---------------------------------------------------------------------


@contextlib.contextmanager
def running_sentinel(master_port: int, directory, settings: str = ""):
    """Run a real ``redis-server --sentinel`` monitoring 127.0.0.1:master_port as "mymaster"."""
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


def test_forked_child_gets_its_own_connections(layer):
    import multiprocessing

    layer.send("rt.fork", {"n": 1})  # the parent's thread now holds a connection
    ctx = multiprocessing.get_context("fork")

    def child():
        # A socket inherited from the parent would interleave both processes' replies.
        if layer._shards[0]._connection()._sock is not None:
            raise SystemExit(3)
        layer.send("rt.fork", {"n": 2})

    process = ctx.Process(target=child)
    process.start()
    process.join(10)
    assert process.exitcode == 0
    layer.send("rt.fork", {"n": 3})
    assert [layer.receive(["rt.fork"])[1]["n"] for _ in range(3)] == [1, 2, 3]


def test_abandoned_member_with_backlog_leaves_group(redis_server):
    # The head of a list is examined when its length is a power of two (or it
    # is full): a member with an unread, expired backlog is noticed before the
    # backlog doubles.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", expiry=1)
    layer.group_add("rt-group", "rt.live")
    layer.group_add("rt-group", "rt.dead!x")
    for n in range(3):
        layer.send_group("rt-group", {"n": n})
    drain_live = lambda: [m for _ in range(5) for c, m in [layer.receive(["rt.live"])] if c]  # noqa: E731
    assert len(drain_live()) == 3
    time.sleep(1.3)
    layer.send_group("rt-group", {"n": 3})  # backlog 3: not examined
    layer.send_group("rt-group", {"n": 4})  # backlog 4: examined, expired entries found
    assert layer.group_channels("rt-group") == ["rt.live"]
    layer.send_group("rt-group", {"n": 5})
    assert [m["n"] for m in drain_live()] == [3, 4, 5]
    assert layer.channel_statistics("rt.dead!")["messages_pending"] == 1  # only n=3 is still fresh
    layer.flush()


def test_threads_that_end_release_their_connections(layer, raw):
    import gc

    before = raw.info("clients")["connected_clients"]
    threads = [threading.Thread(target=layer.send, args=("rt.threads", {"n": n})) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    del threads
    gc.collect()
    wait_for(lambda: raw.info("clients")["connected_clients"] <= before + 1, timeout=5)
    assert len(list(iter(lambda: layer.receive(["rt.threads"])[0], None))) == 30


def test_cross_shard_blocking_receive_during_outage(three):
    servers, layer, clients = three
    names = names_on_distinct_shards(layer, 3, stem="outage")
    receiver = RedisChannelLayer(hosts=[s.url for s in servers], prefix="rt:", blocking_timeout=2)
    down = servers[1]
    down.stop()
    with pytest.raises(LayerUnavailable):
        receiver.receive(names, block=True)
    down.start()
    layer.send(names[0], {"back": True})
    assert receiver.receive(names, block=True) == (names[0], {"back": True})
    receiver.close()


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


def test_url_database_applies(redis_server):
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{redis_server.port}/3"], prefix="rt:")
    layer.send("rt.db", {"x": 1})
    db3 = redis.Redis(port=redis_server.port, db=3)
    assert db3.llen("rt:rt.db") == 1
    layer.flush()
    assert db3.llen("rt:rt.db") == 0
    db3.close()
    layer.close()


def test_password_from_url_or_connection_kwargs(redis_servers):
    (server,) = redis_servers(1)
    admin = redis.Redis(port=server.port)
    admin.config_set("requirepass", "pw")
    admin.close()
    for layer in (
        RedisChannelLayer(hosts=[f"redis://:pw@127.0.0.1:{server.port}/0"], prefix="rt:"),
        RedisChannelLayer(hosts=[("127.0.0.1", server.port)], prefix="rt:", connection_kwargs={"password": "pw"}),
    ):
        layer.send("rt.auth", {"x": 1})
        assert layer.receive(["rt.auth"], block=True) == ("rt.auth", {"x": 1})
        layer.close()
    wrong = RedisChannelLayer(hosts=[f"redis://:nope@127.0.0.1:{server.port}/0"], prefix="rt:")
    with pytest.raises(redis.AuthenticationError):
        wrong.send("rt.auth", {"x": 1})
    wrong.close()
