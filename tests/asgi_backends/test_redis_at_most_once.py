"""At most once through broken connections: a command is sent again only when it provably never reached Redis."""

from __future__ import annotations

import socket
import threading

import pytest
import redis

from asgi_backends.conformance import wait_for
from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.redis import RedisChannelLayer


class ReplyDroppingProxy:
    """A TCP proxy to Redis that, once ``drop`` is set, closes one connection instead of relaying a reply.

    Redis has then received (and run) the command; the client only sees its
    connection break while reading the answer (a reset after the script
    ran). One reply is dropped per ``drop.set()``; new connections work.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.drop = threading.Event()
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.drop.is_set():
                    self.drop.clear()
                    self.dropped += 1
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_a_send_whose_reply_is_lost_is_not_sent_again(redis_server, raw):
    proxy = ReplyDroppingProxy(redis_server.port)
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{proxy.port}/0"], prefix="amo:")
    try:
        layer.send("amo.once", {"n": 1})  # connects and loads the script
        proxy.drop.set()
        with pytest.raises(LayerUnavailable, match="may have completed") as raised:
            layer.send("amo.once", {"n": 2})
        assert raised.value.may_have_run
        # Redis ran the script once: both messages queued, neither twice
        # (resending on a fresh connection would have queued the second again).
        assert raw.llen("amo:amo.once") == 2
        assert layer.receive(["amo.once"]) == ("amo.once", {"n": 1})
        assert layer.receive(["amo.once"]) == ("amo.once", {"n": 2})
        assert layer.receive(["amo.once"]) == (None, None)
    finally:
        layer.close()
        proxy.close()
        raw.delete("amo:amo.once")


def test_a_connection_redis_closed_while_idle_is_replaced_before_sending(redis_server, raw):
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="amo:")
    try:
        layer.send("amo.idle", {"n": 1})
        assert raw.client_kill_filter(_type="normal", skipme=True) >= 1  # as a restart does to every client
        wait_for(lambda: len(raw.client_list(_type="normal")) == 1, timeout=5)
        layer.send("amo.idle", {"n": 2})  # no error: the dead connection was noticed before writing
        assert raw.llen("amo:amo.idle") == 2
    finally:
        layer.close()
        raw.delete("amo:amo.idle")


def test_a_send_that_could_not_be_written_is_safe_to_retry(redis_servers):
    (server,) = redis_servers(1)
    layer = RedisChannelLayer(hosts=[server.url], prefix="amo:")
    try:
        layer.send("amo.down", {"n": 1})
        server.stop()
        with pytest.raises(LayerUnavailable, match="did not complete") as raised:
            layer.send("amo.down", {"n": 2})
        assert not raised.value.may_have_run
    finally:
        layer.close()
