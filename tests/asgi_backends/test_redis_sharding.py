"""The Redis layer sharded over three real redis-server processes."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.redis import RedisChannelLayer
from tests.support.waiting import wait_until


def names_on_distinct_shards(layer, count, stem="spread"):
    """Return one channel name per shard for ``count`` shards."""
    found = {}
    i = 0
    while len(found) < count:
        name = f"{stem}{i}"
        found.setdefault(layer._route(name)[0].label, name)
        i += 1
    return list(found.values())


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
        # The send comes once a BLPOP waits on every shard the names live on.
        wait_until(lambda: sum(c.info("clients")["blocked_clients"] for c in clients) >= 3, 5,
                   what="a blocking pop on each shard")
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


def test_send_batch_and_receive_across_shards(three):
    _, layer, _ = three
    names = names_on_distinct_shards(layer, 3, "rt.spread")
    # The sends go to every shard, the receive is on two: the calls are made in turn.
    results, received = layer.send_batch_and_receive([(name, {"n": name}) for name in names], names[:2], 5)
    assert results == [None, None, None]
    taken = received + layer.receive_batch(names[:2], 5)
    assert sorted(m["n"] for _, m in taken) == sorted(names[:2])
    assert layer.receive([names[2]]) == (names[2], {"n": names[2]})
    # One shard for all: the scripts and the pop travel together, the sends first (once Redis knows
    # the script: a reloaded one runs after the pop).
    layer.send(names[0], {"n": "known"})
    assert layer.receive([names[0]]) == (names[0], {"n": "known"})
    results, received = layer.send_batch_and_receive([(names[0], {"n": 0})], [names[0]], 5)
    assert (results, received) == ([None], [(names[0], {"n": 0})])
