"""Redis-specific behaviour of the Redis layer: configuration, storage, encryption, connections."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from asgi_backends.conformance import wait_for
from asgi_backends.exceptions import ChannelFull
from asgi_backends.redis import RedisChannelLayer
from tests.support.redis_server import free_port
from tests.support.waiting import wait_until


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


def test_send_group_to_more_members_of_one_process_than_one_push_takes(redis_server):
    # The script pushes a list's entries together, 1,000 a call: 2,500 members of one prefix get one each, in order.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:")
    members = [f"rt.proc!{n:05d}" for n in range(2500)]
    for member in members:
        layer.group_add("rt-many", member)
    assert layer.send_group("rt-many", {"x": 1}) is None
    received = layer.receive_batch(["rt.proc!"], 3000)
    assert [channel for channel, _ in received] == layer.group_channels("rt-many")
    assert sorted(channel for channel, _ in received) == members
    layer.flush()


def test_send_group_stops_at_the_lists_capacity_with_entries_still_to_push(redis_server, raw):
    # Three expired entries, a length the first look skips (not a power of two); the list fills with
    # this call's entries not pushed yet: the trim then drops the three, and three more fit.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", expiry=1, process_capacity=1500)
    sent = redis_seconds(raw)
    layer.group_add("rt-stale", "rt.proc!stale")
    for n in range(3):
        layer.send_group("rt-stale", {"x": 0})
    wait_past_expiry(raw, sent)
    members = [f"rt.proc!{n:05d}" for n in range(2000)]
    for member in members:
        layer.group_add("rt-stale", member)
    layer.send_group("rt-stale", {"x": 1})
    assert raw.llen("rt:rt.proc!") == 1500
    assert "rt.proc!stale" not in layer.group_channels("rt-stale")  # its expired entries were found
    received = layer.receive_batch(["rt.proc!"], 3000)
    assert len(received) == 1500 and all(message == {"x": 1} for _, message in received)
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
    # Values chosen so no timestamp or base64 text can contain them by chance.
    secret = {"card": "CARD-NUMBER-4111-1111", "blob": b"PLAINBYTES"}
    layer.send("rt.secret", secret)
    stored = raw.lindex("rt:rt.secret", 0)
    assert b"CARD-NUMBER" not in stored and b"PLAINBYTES" not in stored
    assert layer.receive(["rt.secret"]) == ("rt.secret", secret)
    layer.flush()


def test_batches_encrypted_at_rest_and_undecryptable_entries_skipped(redis_server, raw, caplog):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", symmetric_encryption_keys=["s3cret"])
    other = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", symmetric_encryption_keys=["other"])
    secret = {"card": "CARD-NUMBER-4111-1111", "blob": b"PLAINBYTES"}
    assert layer.send_batch([("rt.secret", secret), ("rt.secret", {"n": 2})]) == [None, None]
    assert other.send_batch([("rt.secret", {"n": "foreign"})]) == [None]
    layer.send("rt.secret", {"n": 4})
    stored = raw.lrange("rt:rt.secret", 0, -1)
    assert len(stored) == 4 and not any(b"CARD-NUMBER" in entry or b"PLAINBYTES" in entry for entry in stored)
    with caplog.at_level(logging.ERROR, logger="asgi_backends.redis.layer"):
        got = layer.receive_batch(["rt.secret"], 10)
    assert got == [("rt.secret", secret), ("rt.secret", {"n": 2}), ("rt.secret", {"n": 4})]
    assert len([r for r in caplog.records if "Dropped" in r.getMessage()]) == 1
    layer.flush()


def test_batch_scripts_reloaded_after_script_flush(layer, raw):
    raw.script_flush()
    assert layer.send_batch([("rt.script", {"n": 1}), ("rt.script", {"n": 2})]) == [None, None]
    raw.script_flush()
    assert layer.receive_batch(["rt.script"], 5) == [("rt.script", {"n": 1}), ("rt.script", {"n": 2})]


def reads_processed(client) -> int:
    return client.info("stats")["total_reads_processed"]


def test_send_batch_and_receive_is_one_round_trip(layer, raw):
    layer.send("rt.next", {"n": 1})
    assert layer.send_batch_and_receive([], ["rt.next"], 1) == ([], [("rt.next", {"n": 1})])  # connected
    layer.send("rt.next", {"n": 2})
    before = reads_processed(raw)
    results, received = layer.send_batch_and_receive([("rt.answer!x", {"n": 1})], ["rt.next", "rt.other"], 2)
    # Redis read two requests: the layer's pipeline, and this INFO.
    assert reads_processed(raw) - before == 2
    assert (results, received) == ([None], [("rt.next", {"n": 2})])
    assert layer.receive(["rt.answer!"]) == ("rt.answer!x", {"n": 1})


def test_the_layer_speaks_resp2_and_reads_replies_split_across_reads(layer, raw):
    large = {"blob": b"x" * 700_000}
    layer.send("rt.large", large)
    assert layer.receive(["rt.large"]) == ("rt.large", large)  # the reply arrives in many reads
    own = raw.client_id()
    clients = [client for client in raw.client_list() if int(client["id"]) != own]
    assert clients and all(client["resp"] == "2" for client in clients)


def test_send_batch_and_receive_gives_each_list_its_turn(layer):
    for n in range(20):
        layer.send("rt.busy", {"n": n})
        layer.send("rt.also", {"n": n})
    taken = [layer.send_batch_and_receive([], ["rt.busy", "rt.also", "rt.idle"], 2)[1] for _ in range(9)]
    channels = [channel for batch in taken for channel, _ in batch]
    # A pop serves the first list with entries, and the lists take turns at the head.
    assert channels.count("rt.busy") >= 4 and channels.count("rt.also") >= 4
    for name in ("rt.busy", "rt.also"):
        assert [m["n"] for batch in taken for c, m in batch if c == name] == list(range(channels.count(name)))
    for bad in ("rt.busy", [["rt.busy"]], ["rt.bad!x"]):
        with pytest.raises(TypeError):
            layer.send_batch_and_receive([], bad, 1)


def test_send_batch_and_receive_reloads_scripts_and_sends_once(layer, raw):
    layer.send("rt.next", {"n": 1})
    raw.script_flush()
    assert layer.send_batch_and_receive([("rt.answer", {"n": 1}), ("rt.answer", {"n": 2})], ["rt.next"], 3) \
        == ([None, None], [("rt.next", {"n": 1})])
    assert layer.receive_batch(["rt.answer"], 5) == [("rt.answer", {"n": 1}), ("rt.answer", {"n": 2})]


@contextlib.contextmanager
def redis_without(*commands):
    """A layer on a fresh redis-server with ``commands`` renamed away: Redis before 7.0 lacks (B)LMPOP."""
    port = free_port()
    directory = tempfile.mkdtemp(prefix="redis-test-")
    renames = [arg for command in commands for arg in ("--rename-command", command, "")]
    process = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory, *renames],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix="rt:", blocking_timeout=2)
        wait_for(lambda: _answers(layer))
        yield layer
        layer.close()
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def test_blocking_batch_receive_without_blmpop(caplog):
    with redis_without("BLMPOP") as layer:
        timer = threading.Timer(0.2, layer.send_batch, args=([("rt.old", {"n": n}) for n in range(3)],))
        timer.start()
        with caplog.at_level(logging.INFO, logger="asgi_backends.redis.batch"):
            got = layer.receive_batch(["rt.old"], 5, block=True)
        timer.join()
        got += layer.receive_batch(["rt.old"], 5)
        assert got == [("rt.old", {"n": n}) for n in range(3)]
        assert any("no BLMPOP" in record.getMessage() for record in caplog.records)
        # Remembered: the next blocking batch goes straight to BLPOP.
        caplog.clear()
        layer.send("rt.old", {"n": 3})
        assert layer.receive_batch(["rt.old"], 5, block=True) == [("rt.old", {"n": 3})]
        assert not caplog.records


def test_send_batch_and_receive_without_lmpop(caplog):
    with redis_without("BLMPOP", "LMPOP") as layer:
        layer.send_batch([("rt.next", {"n": n}) for n in range(3)])
        with caplog.at_level(logging.INFO, logger="asgi_backends.redis.batch"):
            assert layer.send_batch_and_receive([("rt.answer", {"n": 1})], ["rt.next", "rt.more"], 2) \
                == ([None], [("rt.next", {"n": 0}), ("rt.next", {"n": 1})])
        assert any("no BLMPOP" in record.getMessage() for record in caplog.records)
        caplog.clear()
        # Remembered: the receive script travels with the sends.
        assert layer.send_batch_and_receive([("rt.answer", {"n": 2})], ["rt.next"], 2) \
            == ([None], [("rt.next", {"n": 2})])
        assert not caplog.records
        assert layer.receive_batch(["rt.answer"], 5) == [("rt.answer", {"n": 1}), ("rt.answer", {"n": 2})]


def redis_seconds(client) -> float:
    """The clock the layer's scripts judge expiry by: Redis's TIME."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


def wait_past_expiry(client, since: float, expiry: float = 1.0) -> None:
    """Wait until Redis's clock is past ``since + expiry``: what was sent before ``since`` has expired."""
    wait_until(lambda: redis_seconds(client) > since + expiry + 0.05, timeout=expiry + 5,
               what="Redis's clock to pass the expiry", interval=0.05)


@pytest.mark.parametrize("batch", [False, True])
def test_blocking_receive_drops_expired_entries_and_their_members_leave_groups(redis_server, raw, batch):
    # A blocking receive on one shard skips the receive script: the pop checks expiry against Redis's TIME.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", expiry=1, blocking_timeout=2)
    layer.group_add("rt-group", "rt.gone!a")
    sent = redis_seconds(raw)
    layer.send_group("rt-group", {"n": 1})
    layer.send("rt.gone!b", {"n": 2})
    wait_past_expiry(raw, sent)
    layer.send("rt.gone!c", {"n": 3})
    if batch:
        assert layer.receive_batch(["rt.gone!"], 5, block=True) == [("rt.gone!c", {"n": 3})]
    else:
        assert layer.receive(["rt.gone!"], block=True) == ("rt.gone!c", {"n": 3})
    assert layer.group_channels("rt-group") == []
    assert raw.exists("rt:member:rt.gone!a") == 0
    # Everything expired: the receive waits on for a fresh message.
    sent = redis_seconds(raw)
    layer.send("rt.gone!d", {"n": 4})
    wait_past_expiry(raw, sent)
    timer = threading.Timer(0.3, layer.send, args=("rt.gone!e", {"n": 5}))
    timer.start()
    if batch:
        assert layer.receive_batch(["rt.gone!"], 5, block=True) == [("rt.gone!e", {"n": 5})]
    else:
        assert layer.receive(["rt.gone!"], block=True) == ("rt.gone!e", {"n": 5})
    timer.join()
    layer.flush()
    layer.close()


def test_blocking_batch_receive_on_one_list_takes_a_burst_in_order(layer):
    assert layer.send_batch([("rt.burst!x", {"n": n}) for n in range(5)]) == [None] * 5
    assert layer.receive_batch(["rt.burst!"], 3, block=True) == [("rt.burst!x", {"n": n}) for n in range(3)]
    assert layer.receive_batch(["rt.burst!"], 3, block=True) == [("rt.burst!x", {"n": n}) for n in range(3, 5)]


def _answers(layer):
    try:
        return layer.receive_batch(["rt.ping"], 1) == []
    except Exception:
        return False


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


def test_channel_full_is_layer_attribute(redis_server):
    small = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", capacity=1)
    small.send("rt.full", {"x": 1})
    with pytest.raises(small.ChannelFull):
        small.send("rt.full", {"x": 2})
    assert small.ChannelFull is ChannelFull
    small.flush()
    small.close()


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


def test_abandoned_member_with_backlog_leaves_group(redis_server, raw):
    # The head of a list is examined when its length is a power of two (or it
    # is full): a member with an unread, expired backlog is noticed before the
    # backlog doubles.
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="rt:", expiry=1)
    layer.group_add("rt-group", "rt.live")
    layer.group_add("rt-group", "rt.dead!x")
    sent = redis_seconds(raw)
    for n in range(3):
        layer.send_group("rt-group", {"n": n})
    drain_live = lambda: [m for _ in range(5) for c, m in [layer.receive(["rt.live"])] if c]  # noqa: E731
    assert len(drain_live()) == 3
    wait_past_expiry(raw, sent)
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
