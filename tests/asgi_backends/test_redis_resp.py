"""The reactor's RESP connection byte by byte (StringTransport, task.Clock), and a link's NOSCRIPT recovery.

The recovery test talks to a scripted "Redis" on a private reactor, so the
order of what reaches the server, reply by reply, is under the test's
control: that is where a resent command could overtake a later one.
"""

from __future__ import annotations

import socket
import time

import hiredis
from twisted.internet import protocol, task
from twisted.internet.interfaces import ISystemHandle
from twisted.internet.pollreactor import PollReactor
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from asgi_backends.redis import RedisChannelLayer
from asgi_backends.redis.connection import ReplyLost
from asgi_backends.redis.reactor_client import ShardLink
from asgi_backends.redis.resp import RespProtocol
from asgi_backends.redis.scripts import SCRIPTS


def connected(reply_timeout=None):
    clock = task.Clock()
    lost = []
    proto = RespProtocol(clock, reply_timeout, lost.append)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, clock, lost


def test_replies_are_matched_to_requests_in_order_across_reads():
    proto, transport, _, _ = connected()
    got = []
    proto.request(hiredis.pack_command(("GET", "a")), 1, got.append)
    proto.request(hiredis.pack_command(("TIME",)) + hiredis.pack_command(("GET", "b")), 2, got.append)
    assert transport.value() == b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nTIME\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
    stream = b"$1\r\nx\r\n*2\r\n$2\r\n17\r\n$1\r\n5\r\n-ERR no\r\n"
    for i in range(len(stream)):  # one byte at a time: replies split anywhere
        proto.dataReceived(stream[i:i + 1])
    assert got[0] == [b"x"]
    assert got[1][0] == [b"17", b"5"] and isinstance(got[1][1], hiredis.ReplyError) and proto.outstanding == 0


def test_bytes_that_are_not_resp_or_replies_nobody_asked_for_drop_the_connection():
    proto, transport, _, _ = connected()
    proto.dataReceived(b"+OK\r\n")
    assert transport.disconnected
    proto, transport, _, _ = connected()
    proto.request(b"*1\r\n$4\r\nPING\r\n", 1, lambda replies: None)
    proto.dataReceived(b"?what\r\n")
    assert transport.disconnected


def test_a_lost_connection_fails_what_is_waiting_as_may_have_run():
    proto, _, _, lost = connected()
    got = []
    proto.request(b"*1\r\n$4\r\nPING\r\n", 1, got.append)
    proto.connectionLost(Failure(ConnectionError("reset")))
    assert isinstance(got[0], ReplyLost) and "may have run" in str(got[0]) and lost == [proto]


def test_a_redis_that_stops_answering_is_dropped_at_the_reply_timeout_not_before():
    proto, transport, clock, _ = connected(reply_timeout=10)
    proto.request(b"*1\r\n$4\r\nPING\r\n", 1, lambda replies: None)
    proto.request(b"*1\r\n$4\r\nPING\r\n", 1, lambda replies: None)
    clock.advance(6)
    proto.dataReceived(b"+PONG\r\n")  # progress: the clock starts again
    clock.advance(9.9)
    assert not transport.disconnected
    clock.advance(0.2)
    assert transport.disconnected


def test_an_idle_connection_is_never_timed_out():
    proto, transport, clock, _ = connected(reply_timeout=1)
    proto.request(b"*1\r\n$4\r\nPING\r\n", 1, lambda replies: None)
    proto.dataReceived(b"+PONG\r\n")
    clock.advance(100)
    assert not transport.disconnected and not clock.getDelayedCalls()


class ScriptedRedis(protocol.Protocol):
    """Records each command it gets; answers only when the test says, with what the test says."""

    def connectionMade(self):
        self.factory.connection = self
        self.reader = hiredis.Reader()
        self.commands = []

    def dataReceived(self, data):
        self.reader.feed(data)
        command = self.reader.gets()
        while command is not False:
            self.commands.append(command)
            command = self.reader.gets()

    def answer(self, raw):
        self.transport.write(raw)


def run_until(reactor, condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        reactor.iterate(0.005)


def test_after_noscript_nothing_new_is_written_until_the_earlier_requests_answer():
    reactor = PollReactor()
    factory = protocol.Factory.forProtocol(ScriptedRedis)
    factory.connection = None
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    layer = RedisChannelLayer(hosts=[("127.0.0.1", port.getHost().port)])
    shard = layer._shards[0]
    link = ShardLink(reactor, shard, shard.address)
    replies = []
    try:
        link.run("send", ("k",), ("a",), lambda reply: replies.append(("A", reply)))
        link.run("send", ("k",), ("b",), lambda reply: replies.append(("B", reply)))
        run_until(reactor, lambda: factory.connection is not None and len(factory.connection.commands) == 2)
        redis = factory.connection
        redis.answer(b"-NOSCRIPT No matching script\r\n")
        run_until(reactor, lambda: link._recovering)
        # C comes while B (written before the recovery) has not answered: it must wait.
        link.run("send", ("k",), ("c",), lambda reply: replies.append(("C", reply)))
        for _ in range(20):
            reactor.iterate(0.005)
        assert len(redis.commands) == 2
        redis.answer(b"-NOSCRIPT No matching script\r\n")
        run_until(reactor, lambda: len(redis.commands) >= 6)
        sha = SCRIPTS["send"].sha.encode()
        assert redis.commands[2][:2] == [b"SCRIPT", b"LOAD"]
        # The refused ones again, in order, and the held one after them, never before.
        assert [(command[0], command[1], command[-1]) for command in redis.commands[3:]] == [
            (b"EVALSHA", sha, b"a"), (b"EVALSHA", sha, b"b"), (b"EVALSHA", sha, b"c")]
        redis.answer(b"$40\r\n" + sha + b"\r\n:1\r\n:1\r\n:1\r\n")
        run_until(reactor, lambda: len(replies) == 3)
        assert replies == [("A", 1), ("B", 1), ("C", 1)]
    finally:
        link.close()
        port.stopListening()
        for _ in range(10):
            reactor.iterate(0.005)
        for selectable in reactor.removeAll():
            selectable.connectionLost(Failure(ConnectionError("test over")))
        reactor.waker.connectionLost(None)


@implementer(ISystemHandle)
class SocketTransport:
    """A transport over a real socket that keeps what it is handed, as Twisted's does until it can send it."""

    def __init__(self, sock):
        self.sock = sock
        self.buffered = []
        self.disconnecting = False

    def getHandle(self):
        return self.sock

    def write(self, data):
        self.buffered.append(bytes(data))

    def loseConnection(self):
        self.disconnecting = True

    def abortConnection(self):
        self.disconnecting = True


def read_exactly(sock, count):
    data = b""
    sock.settimeout(5)
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "the socket closed"
        data += chunk
    return data


def test_requests_go_straight_to_a_plain_socket_until_the_kernel_takes_only_part():
    ours, redis_side = socket.socketpair()
    try:
        ours.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        proto = RespProtocol(task.Clock(), None, lambda _: None)
        transport = SocketTransport(ours)
        proto.makeConnection(transport)
        got = []
        small = hiredis.pack_command(("GET", "a"))
        proto.request(small, 1, got.append)
        assert read_exactly(redis_side, len(small)) == small and transport.buffered == []
        # More than the socket takes: the rest goes to the transport, and so does what follows,
        # even though the reader makes room.
        large = hiredis.pack_command(("SET", "k", "v" * 2_000_000))
        proto.request(large, 1, got.append)
        assert transport.buffered and len(transport.buffered[0]) < len(large)
        taken = len(large) - len(transport.buffered[0])
        assert read_exactly(redis_side, taken) == large[:taken]
        proto.request(small, 1, got.append)
        assert len(transport.buffered) == 2 and transport.buffered[1] == small
        # Answered in full: Redis read it all, so the transport holds nothing and the socket is free again.
        proto.dataReceived(b"$1\r\nx\r\n+OK\r\n$1\r\ny\r\n")
        assert got == [[b"x"], [b"OK"], [b"y"]]
        proto.request(small, 1, got.append)
        assert read_exactly(redis_side, len(small)) == small and len(transport.buffered) == 2
        # Closing: nothing more goes straight to the socket.
        proto.close()
        proto.request(small, 1, got.append)
        assert transport.disconnecting and transport.buffered[-1] == small
    finally:
        ours.close()
        redis_side.close()

