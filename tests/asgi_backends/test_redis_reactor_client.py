"""The Redis layer's reactor client against real redis-servers, on a private reactor driven by the test.

Each test builds its own ``PollReactor`` and iterates it until the Deferred
under test has fired (or a deadline passes), so real sockets, real Redis
and the client's own timers run exactly as under the interface server.
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.exceptions import AuthenticationError, ResponseError
from twisted.internet import protocol
from twisted.internet.pollreactor import PollReactor
from twisted.python.failure import Failure

from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.redis import RedisChannelLayer
from asgi_backends.redis.resp import reactor_address
from tests.support.redis_server import RedisServer, free_port

PREFIX = "interface.response.test!"


@pytest.fixture
def reactor():
    reactor = PollReactor()
    yield reactor
    deadline = time.monotonic() + 2
    while (reactor.getReaders() or reactor.getWriters()) and time.monotonic() < deadline:
        if reactor.getReaders() == [reactor.waker] and not reactor.getWriters():
            break
        reactor.iterate(0.01)
    for selectable in reactor.removeAll():
        selectable.connectionLost(Failure(ConnectionError("test over")))
    reactor.waker.connectionLost(None)


def settle(reactor, deferred, timeout=5.0):
    """Run ``reactor`` until ``deferred`` fires; return its result or raise its failure."""
    results = []
    deferred.addBoth(results.append)
    deadline = time.monotonic() + timeout
    while not results:
        assert time.monotonic() < deadline, "the Deferred did not fire in time"
        reactor.iterate(0.005)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def make_client(reactor, hosts, **options):
    options.setdefault("blocking_timeout", 0.3)
    layer = RedisChannelLayer(hosts=hosts, **options)
    client = layer.reactor_client(reactor)
    assert client is not None
    return layer, client


def close(reactor, layer, client):
    client.close()
    for _ in range(5):
        reactor.iterate(0)
    layer.close()


def test_messages_sent_in_the_reactor_are_received_in_order_across_shards(reactor, redis_servers):
    servers = redis_servers(2)
    layer, client = make_client(reactor, [server.url for server in servers])
    try:
        names = [layer.new_channel(PREFIX) for _ in range(4)]
        items = [(names[i % 4], {"n": i}) for i in range(40)] + [(f"work.{i}", {"n": i}) for i in range(20)]
        assert settle(reactor, client.send_batch(items)) == [None] * 60
        received = []
        while len(received) < 40:
            batch = settle(reactor, client.receive_replies(PREFIX, 200))
            assert batch, "replies sent were not received"
            received.extend(batch)
        for name in names:
            assert [m["n"] for c, m in received if c == name] == [i for i in range(40) if names[i % 4] == name]
        # The other channels are where the blocking layer finds them, on both shards.
        for server in servers:  # 20 channels hashed over two shards: both hold some
            with redis.Redis.from_url(server.url) as plain:
                assert plain.keys("asgi:work.*")
        work = layer.receive_batch([f"work.{i}" for i in range(20)], 20)
        assert sorted(message["n"] for _, message in work) == list(range(20))
        assert layer.receive_batch([f"work.{i}" for i in range(20)], 20) == []
    finally:
        close(reactor, layer, client)


def test_a_full_channel_refuses_and_holds_back_the_rest_of_the_batch(reactor, redis_server):
    layer, client = make_client(reactor, [redis_server.url], prefix="full:", channel_capacity={"small": 2})
    try:
        results = settle(reactor, client.send_batch([("small", {"n": n}) for n in range(6)]))
        assert results[:2] == [None, None]
        assert all(isinstance(r, layer.ChannelFull) for r in results[2:])
        assert "earlier message" in str(results[3]) and "earlier message" not in str(results[2])
        assert results[3] is results[4] is results[5]  # one refusal for all those held back behind it
        # One message alone goes through the single-send script, with the same answer.
        (alone,) = settle(reactor, client.send_batch([("small", {"n": 9})]))
        assert isinstance(alone, layer.ChannelFull)
        too_big = settle(reactor, client.send_batch([("big", {"x": b"x" * (layer.max_message_size + 1)})]))
        assert isinstance(too_big[0], layer.MessageTooLarge)
        with pytest.raises(TypeError):
            client.send_batch([("bad name!", {"a": 1})])
    finally:
        close(reactor, layer, client)


def test_scripts_flushed_from_redis_are_reloaded_and_nothing_overtakes(reactor, redis_server):
    layer, client = make_client(reactor, [redis_server.url], prefix="flush:")
    plain = redis.Redis.from_url(redis_server.url)
    try:
        name = layer.new_channel(PREFIX)
        assert settle(reactor, client.send_batch([(name, {"n": 0})])) == [None]
        plain.script_flush()
        # Several requests in one turn, single sends and batches: every one meets NOSCRIPT or follows one.
        pending = [client.send_batch([(name, {"n": n})]) for n in range(1, 6)]
        pending.append(client.send_batch([(name, {"n": 6}), (name, {"n": 7})]))
        pending.extend(client.send_batch([(name, {"n": n})]) for n in range(8, 11))
        for deferred in pending:
            assert all(result is None for result in settle(reactor, deferred))
        batch = settle(reactor, client.receive_replies(PREFIX, 50))
        assert [message["n"] for _, message in batch] == list(range(11))
    finally:
        close(reactor, layer, client)
        plain.close()


def test_redis_down_fails_without_a_resend_and_the_client_reconnects(reactor):
    server = RedisServer().start()
    layer, client = make_client(reactor, [server.url], prefix="down:")
    try:
        name = layer.new_channel(PREFIX)
        assert settle(reactor, client.send_batch([(name, {"n": 1})])) == [None]
        server.stop()
        for _ in range(10):
            reactor.iterate(0.01)  # the reactor sees the connection close
        (result,) = settle(reactor, client.send_batch([(name, {"n": 2})]))
        assert isinstance(result, LayerUnavailable) and not result.may_have_run
        with pytest.raises(LayerUnavailable):
            settle(reactor, client.receive_replies(PREFIX, 10))
        server.start()
        assert settle(reactor, client.send_batch([(name, {"n": 3})])) == [None]
        assert [m["n"] for _, m in settle(reactor, client.receive_replies(PREFIX, 10))] == [3]
    finally:
        close(reactor, layer, client)
        server.cleanup()


class Silent(protocol.Protocol):
    """A "Redis" that reads what it is sent and answers nothing (or hangs up after the first bytes)."""

    hang_up = False

    def dataReceived(self, data):
        self.factory.received.append(data)
        if self.hang_up:
            self.transport.loseConnection()


def silent_server(reactor, hang_up):
    factory = protocol.Factory.forProtocol(type("Server", (Silent,), {"hang_up": hang_up}))
    factory.received = []
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    return port, factory


@pytest.mark.parametrize("hang_up", [True, False], ids=["connection-lost", "no-answer"])
def test_a_request_written_but_not_answered_fails_as_may_have_run(reactor, hang_up):
    port, factory = silent_server(reactor, hang_up)
    layer, client = make_client(reactor, [("127.0.0.1", port.getHost().port)], prefix="silent:",
                                blocking_timeout=0.1, connection_kwargs={"socket_timeout": 0.4})
    try:
        started = time.monotonic()
        (result,) = settle(reactor, client.send_batch([("work", {"n": 1})]))
        assert isinstance(result, LayerUnavailable) and result.may_have_run
        assert factory.received and b"EVALSHA" in b"".join(factory.received)
        if not hang_up:
            assert time.monotonic() - started >= 0.4  # the reply timeout, not sooner
    finally:
        close(reactor, layer, client)
        port.stopListening()


def test_password_and_database_are_sent_first(reactor):
    server = RedisServer(args=("--requirepass", "s3cret")).start()
    good, good_client = make_client(reactor, [f"redis://:s3cret@127.0.0.1:{server.port}/3"], prefix="auth:")
    bad, bad_client = make_client(reactor, [f"redis://:wrong@127.0.0.1:{server.port}/0"], prefix="auth:")
    plain = redis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/3")
    try:
        assert settle(reactor, good_client.send_batch([("work", {"n": 1})])) == [None]
        assert plain.llen("auth:work") == 1  # in database 3
        (refused,) = settle(reactor, bad_client.send_batch([("work", {"n": 2})]))
        assert isinstance(refused, AuthenticationError)
        assert plain.llen("auth:work") == 1
    finally:
        close(reactor, good, good_client)
        close(reactor, bad, bad_client)
        plain.close()
        server.cleanup()


def test_unix_socket_and_encryption(reactor, tmp_path):
    path = str(tmp_path / "redis.sock")
    server = RedisServer(args=("--unixsocket", path, "--unixsocketperm", "700")).start()
    keys = {"symmetric_encryption_keys": ["a secret"]}
    layer, client = make_client(reactor, [f"unix://{path}?db=1"], prefix="unix:", **keys)
    try:
        name = layer.new_channel(PREFIX)
        assert settle(reactor, client.send_batch([(name, {"n": 1}), ("work", {"secret": "plans"})])) == [None, None]
        assert settle(reactor, client.receive_replies(PREFIX, 10)) == [(name, {"n": 1})]
        raw = redis.Redis(unix_socket_path=path, db=1).lrange("unix:work", 0, -1)
        assert raw and b"plans" not in raw[0]
        assert layer.receive(["work"]) == ("work", {"secret": "plans"})
    finally:
        close(reactor, layer, client)
        server.cleanup()


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_group_send_reaches_each_member_of_the_process_with_one_decoded_message(reactor, redis_server, encrypted):
    keys = {"symmetric_encryption_keys": ["a secret"]} if encrypted else {}
    layer, client = make_client(reactor, [redis_server.url], prefix=f"fan{len(keys)}:", **keys)
    try:
        members = [layer.new_channel(PREFIX) for _ in range(3)]
        for member in members:
            layer.group_add("room", member)
        layer.send_group("room", {"text": "to all"})
        assert settle(reactor, client.send_batch([(members[0], {"text": "to one"})])) == [None]
        layer.send_group("room", {"text": "to all"})
        batch = settle(reactor, client.receive_replies(PREFIX, 10))
        assert [channel for channel, _ in batch] == layer.group_channels("room") + [members[0]] + \
            layer.group_channels("room")
        assert [m["text"] for _, m in batch] == ["to all"] * 3 + ["to one"] + ["to all"] * 3
        first, direct, second = batch[:3], batch[3], batch[4:]
        assert all(m is first[0][1] for _, m in first) and all(m is second[0][1] for _, m in second)
        assert first[0][1] is not second[0][1] and direct[1] is not first[0][1]  # only runs of one payload share
    finally:
        layer.flush()
        close(reactor, layer, client)


def test_expired_replies_are_dropped_by_the_blocking_pop(reactor, redis_server):
    layer, client = make_client(reactor, [redis_server.url], prefix="expiry:", expiry=0.05, blocking_timeout=0.2)
    plain = redis.Redis.from_url(redis_server.url)
    try:
        name = layer.new_channel(PREFIX)
        assert settle(reactor, client.send_batch([(name, {"n": 1})])) == [None]
        sent_at = int(plain.time()[0] * 1000 + plain.time()[1] // 1000)
        from tests.support.waiting import wait_until
        wait_until(lambda: (lambda t: t[0] * 1000 + t[1] // 1000)(plain.time()) > sent_at + 100,
                   what="Redis's clock past the expiry")
        assert settle(reactor, client.receive_replies(PREFIX, 10)) == []
        assert plain.llen(f"expiry:{PREFIX}") == 0
    finally:
        close(reactor, layer, client)
        plain.close()


def test_receive_replies_takes_only_a_process_prefix(reactor, redis_server):
    layer, client = make_client(reactor, [redis_server.url])
    try:
        with pytest.raises(TypeError):
            client.receive_replies("http.request", 10)
        with pytest.raises(ValueError):
            client.receive_replies(PREFIX, 0)
    finally:
        close(reactor, layer, client)


@pytest.mark.parametrize("host, options", [
    ("rediss://localhost:6380/0", {}),
    (("localhost", 6379), {"ssl": True}),
    (("localhost", 6379), {"protocol": 3}),
    (("localhost", 6379), {"connection_class": object}),
])
def test_hosts_the_reactor_cannot_speak_to_fall_back_to_the_blocking_client(host, options):
    assert reactor_address(host, options) is None
    assert RedisChannelLayer(hosts=[host], connection_kwargs=options).reactor_client(None) is None


def test_addresses_carry_what_the_handshake_needs():
    address = reactor_address("redis://ada:pw@10.0.0.1:7000/4", {"client_name": "is", "socket_timeout": 9})
    assert (address.host, address.port, address.db, address.reply_timeout) == ("10.0.0.1", 7000, 4, 9.0)
    assert address.handshake() == [("AUTH", "ada", "pw"), ("CLIENT", "SETNAME", "is"), ("SELECT", 4)]
    assert reactor_address(("::1", 6379), {}).handshake() == []
    assert reactor_address("unix:///run/redis.sock?db=2", {}).path == "/run/redis.sock"
    # RESP2, asked for by name, is what the reactor speaks (and the layer's default).
    assert reactor_address(("::1", 6379), {"protocol": 2}) is not None
    assert reactor_address("redis://localhost:6379/0?protocol=2", {}) is not None


def test_error_replies_become_redis_py_errors(reactor, redis_server):
    layer, client = make_client(reactor, [redis_server.url], prefix="oom:")
    plain = redis.Redis.from_url(redis_server.url)
    plain.config_set("maxmemory", "1")
    try:
        (result,) = settle(reactor, client.send_batch([("work", {"n": 1})]))
        assert isinstance(result, ResponseError) and "OOM" in str(result)
    finally:
        plain.config_set("maxmemory", "0")
        close(reactor, layer, client)
        plain.close()


def test_a_port_nobody_listens_on_is_unavailable_at_once(reactor):
    layer, client = make_client(reactor, [("127.0.0.1", free_port())])
    try:
        (result,) = settle(reactor, client.send_batch([("work", {"n": 1})]))
        assert isinstance(result, LayerUnavailable) and not result.may_have_run
    finally:
        close(reactor, layer, client)
