"""WebSocket timeouts and close codes, driven through a StringTransport on a task.Clock.

The protocols run exactly as in the server (the HTTP side parses the upgrade
and hands over to the WebSocket side), with the in-memory layer, inline
sends (``sender_threads=0``) and the clock under the test's control, so the
edges of every timeout can be checked to the millisecond without waiting.
"""

from __future__ import annotations

import logging
import struct

import pytest
import websocket
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from asgi_backends.inmemory import ChannelLayer
from interface_server.cli import build_parser, config_from_args
from interface_server.config import ServerConfig
from interface_server.http_protocol import HTTPFactory
from interface_server.server import Server, ServerContext
from interface_server.ws_protocol import WSState, is_sendable_close_code

HANDSHAKE = (b"GET /ws/room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class Transport(StringTransport):
    """A StringTransport that, like a TCP transport, lets go of a producer it never had."""

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split what the server wrote (unmasked frames) into (opcode, payload) pairs."""
    frames = []
    i = 0
    while i < len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            length, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif length == 127:
            length, i = struct.unpack("!Q", data[i:i + 8])[0], i + 8
        frames.append((opcode, data[i:i + length]))
        i += length
    return frames


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked frame, as a client sends it."""
    return websocket.ABNF.create_frame(payload, opcode).format()


class Connection:
    """One client connection: its transport, the protocol on it, and its reply channel."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.transport = Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 8000))
        http = HTTPFactory(harness.ctx).buildProtocol(None)
        http.makeConnection(self.transport)
        http.dataReceived(HANDSHAKE)
        self.protocol = self.transport.protocol
        channel, message = harness.layer.receive(["websocket.connect"], block=False)
        assert channel == "websocket.connect", "the server sent no websocket.connect"
        self.reply_channel = message["reply_channel"]

    def reply(self, message: dict) -> None:
        """Play the application: a message on the reply channel reaches the protocol."""
        self.harness.ctx.receiver.dispatch(self.reply_channel, message)

    def accept(self) -> None:
        self.reply({"accept": True})
        assert self.transport.value().startswith(b"HTTP/1.1 101 "), self.transport.value()
        self.transport.clear()

    def send(self, opcode: int, payload: bytes = b"") -> None:
        self.protocol.dataReceived(client_frame(opcode, payload))

    def frames(self) -> list[tuple[int, bytes]]:
        """The frames the server wrote since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return server_frames(data)

    def close_code(self) -> int | None:
        """The code of the close frame the server sent since the last look, or None."""
        for opcode, payload in self.frames():
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0]
        return None

    def finish_close(self) -> dict:
        """Answer the server's close frame, lose the connection; return the websocket.disconnect message."""
        self.send(OP_CLOSE, struct.pack("!H", 1000))
        if self.protocol.ws_state is not WSState.CLOSED:
            self.protocol.connectionLost(Failure(ConnectionDone()))
        channel, message = self.harness.layer.receive(["websocket.disconnect"], block=False)
        assert channel == "websocket.disconnect"
        return message


class Harness:
    """A server context on a task.Clock, its periodic timeout check run by hand (``tick``)."""

    def __init__(self, layer: ChannelLayer | None = None, clock: task.Clock | None = None, **options) -> None:
        self.clock = clock or task.Clock()
        self.layer = layer or ChannelLayer()
        config = ServerConfig(sender_threads=0, **options)
        self.server = Server(self.layer, config, reactor=self.clock)
        self.ctx = self.server.ctx = ServerContext(self.layer, config, self.clock)
        self.ctx.now = self.clock.seconds

    def connect(self) -> Connection:
        return Connection(self)

    def advance_to(self, when: float) -> None:
        """Move the clock to ``when`` and run the server's timeout check there."""
        self.clock.advance(when - self.clock.seconds())
        self.server._check_timeouts()


@pytest.fixture
def caplog_ws(caplog):
    caplog.set_level(logging.DEBUG, logger="interface_server.ws_protocol")
    return caplog


# -- websocket_timeout: a lifetime ------------------------------------------------


def test_lifetime_closes_just_after_it_not_before():
    harness = Harness(websocket_timeout=10, ping_interval=0)
    conn = harness.connect()  # at t=0: the lifetime counts from the handshake request, as in Daphne
    harness.advance_to(2)
    conn.accept()
    harness.advance_to(10)
    assert conn.close_code() is None and conn.protocol.ws_state is WSState.OPEN
    harness.advance_to(10.001)
    assert conn.close_code() == 1000
    disconnect = conn.finish_close()
    assert disconnect == {"reply_channel": conn.reply_channel, "code": 1000, "path": "/ws/room", "order": 1}


def test_traffic_and_pongs_do_not_extend_the_lifetime():
    harness = Harness(websocket_timeout=10, ping_interval=2, ping_timeout=5)
    conn = harness.connect()
    conn.accept()
    # Busy for five seconds: frames both ways every half second.
    for step in range(1, 11):
        harness.advance_to(step * 0.5)
        conn.send(OP_TEXT, b"ping-pong %d" % step)
        conn.reply({"text": "echo"})
    assert [op for op, _ in conn.frames()] == [OP_TEXT] * 10
    # Then quiet, but answering every ping the server sends.
    pings = 0
    for step in range(11, 21):
        harness.advance_to(step * 0.5)
        for opcode, payload in conn.frames():
            assert opcode == OP_PING
            pings += 1
            conn.send(OP_PONG, payload)
    assert pings >= 2 and conn.protocol.ws_state is WSState.OPEN
    assert harness.clock.seconds() == 10
    conn.send(OP_TEXT, b"last word")
    harness.advance_to(10.01)
    assert conn.close_code() == 1000
    received = [harness.layer.receive(["websocket.receive"], block=False)[1] for _ in range(11)]
    assert received[-1]["text"] == "last word" and received[-1]["order"] == 11


def test_negative_websocket_timeout_means_no_lifetime():
    harness = Harness(websocket_timeout=-1, ping_interval=0)
    conn = harness.connect()
    conn.accept()
    harness.advance_to(365 * 86400)
    assert conn.close_code() is None and conn.protocol.ws_state is WSState.OPEN


def test_default_lifetime_is_the_layers_group_expiry_or_one_day():
    assert ServerConfig().websocket_timeout is None
    assert ServerConfig().websocket_lifetime(ChannelLayer(group_expiry=3600)) == 3600
    assert ServerConfig().websocket_lifetime(ChannelLayer()) == 86400  # the layers' default group_expiry
    # As in Daphne, 0 is "not given": the default again.
    assert ServerConfig(websocket_timeout=0).websocket_lifetime(ChannelLayer(group_expiry=60)) == 60
    assert ServerConfig(websocket_timeout=-1).websocket_lifetime(ChannelLayer()) is None
    assert ServerConfig(websocket_timeout=5).websocket_lifetime(ChannelLayer(group_expiry=60)) == 5
    harness = Harness(layer=ChannelLayer(group_expiry=30), ping_interval=0)
    conn = harness.connect()
    conn.accept()
    harness.advance_to(30)
    assert conn.close_code() is None
    harness.advance_to(30.01)
    assert conn.close_code() == 1000


def test_cli_timeout_options_match_daphne():
    parser = build_parser()

    def config(*argv):
        return config_from_args(parser.parse_args(["m:layer", *argv]), None)

    assert config().websocket_timeout is None  # the layer's group_expiry
    assert config("--websocket_timeout", "0").websocket_timeout is None
    assert config("--websocket_timeout", "-1").websocket_lifetime(ChannelLayer()) is None
    assert config("--websocket-timeout", "60").websocket_timeout == 60
    assert config().websocket_connect_timeout == 5
    assert config("--websocket_connect_timeout", "-1").websocket_connect_timeout is None
    assert config("-t", "30").http_timeout == 30
    with pytest.raises(ValueError, match="websocket_connect_timeout"):
        config("--websocket_connect_timeout", "0")


# -- websocket_connect_timeout ------------------------------------------------------


def test_connect_timeout_refuses_an_unanswered_handshake_just_after_it():
    harness = Harness(websocket_connect_timeout=5)
    conn = harness.connect()
    harness.advance_to(5)
    assert conn.transport.value() == b"" and conn.protocol.ws_state is WSState.CONNECTING
    harness.advance_to(5.001)
    assert conn.transport.value().startswith(b"HTTP/1.1 503 ")
    # A late answer changes nothing.
    conn.reply({"accept": True})
    assert b"101" not in conn.transport.value()


def test_connect_timeout_minus_one_waits_for_ever():
    harness = Harness(websocket_connect_timeout=-1)
    conn = harness.connect()
    harness.advance_to(86400)
    assert conn.transport.value() == b"" and conn.protocol.ws_state is WSState.CONNECTING
    conn.accept()


def test_ping_timeout_drops_a_silent_client_and_zero_never_does():
    harness = Harness(ping_interval=2, ping_timeout=3)
    conn = harness.connect()
    conn.accept()
    harness.advance_to(2)
    assert [op for op, _ in conn.frames()] == [OP_PING]
    harness.advance_to(5)
    assert conn.transport.connected and not conn.transport.disconnecting
    harness.advance_to(5.01)
    assert conn.protocol.ws_state is WSState.CLOSING  # aborted: the disconnect says 1006
    conn.protocol.connectionLost(Failure(ConnectionDone()))
    assert harness.layer.receive(["websocket.disconnect"], block=False)[1]["code"] == 1006

    patient = Harness(ping_interval=2, ping_timeout=0)
    conn = patient.connect()
    conn.accept()
    patient.advance_to(3600)
    assert conn.protocol.ws_state is WSState.OPEN


# -- close codes from the application -----------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                  3000, 3999, 4000, 4999])
def test_application_may_close_with_any_code_valid_to_send(code, caplog_ws):
    harness = Harness()
    conn = harness.connect()
    conn.accept()
    conn.reply({"close": code})
    assert conn.close_code() == code
    assert conn.finish_close()["code"] == code
    assert not [r for r in caplog_ws.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, "4000", 4000.0, [4000]])
def test_invalid_close_code_closes_with_1000_and_warns_once(code, caplog_ws):
    assert not is_sendable_close_code(code)
    harness = Harness()
    for _ in range(2):
        conn = harness.connect()
        conn.accept()
        conn.reply({"close": code})
        assert conn.close_code() == 1000
        assert conn.finish_close()["code"] == 1000
    warnings = [r.getMessage() for r in caplog_ws.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert repr(code) in warnings[0] and "1000" in warnings[0]


def test_close_true_is_1000_and_close_false_does_not_close():
    harness = Harness()
    conn = harness.connect()
    conn.accept()
    conn.reply({"text": "kept open", "close": False})
    assert conn.frames() == [(OP_TEXT, b"kept open")]
    conn.reply({"close": True})
    assert conn.close_code() == 1000
    assert is_sendable_close_code(1000) and not is_sendable_close_code(True)


# -- websocket.connect full: held and retried -------------------------------------------------------


def start_handshake(harness: Harness) -> Transport:
    transport = Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                          hostAddress=IPv4Address("TCP", "127.0.0.1", 8000))
    http = HTTPFactory(harness.ctx).buildProtocol(None)
    http.makeConnection(transport)
    http.dataReceived(HANDSHAKE)
    return transport


def test_a_full_websocket_connect_is_retried_until_there_is_room():
    harness = Harness(layer=ChannelLayer(channel_capacity={"websocket.connect": 1}))
    harness.layer.send("websocket.connect", {"filler": True})
    transport = start_handshake(harness)
    assert transport.value() == b""  # held, not refused
    harness.clock.advance(1.0)
    assert transport.value() == b"" and transport.protocol.ws_state is WSState.CONNECTING  # retried, still full
    assert harness.layer.receive(["websocket.connect"], block=False)[1] == {"filler": True}
    harness.clock.advance(0.3)  # the next retry (backoff at most 0.25 s) finds room
    channel, message = harness.layer.receive(["websocket.connect"], block=False)
    assert channel == "websocket.connect" and message["path"] == "/ws/room" and message["order"] == 0
    harness.ctx.receiver.dispatch(message["reply_channel"], {"accept": True})
    assert transport.value().startswith(b"HTTP/1.1 101 ")


def test_a_connect_still_full_at_the_connect_timeout_is_refused_and_never_sent():
    harness = Harness(layer=ChannelLayer(channel_capacity={"websocket.connect": 1}), websocket_connect_timeout=2.0)
    harness.layer.send("websocket.connect", {"filler": True})
    transport = start_handshake(harness)
    for _ in range(19):
        harness.advance_to(harness.clock.seconds() + 0.1)
    assert transport.value() == b""  # 1.9 s: still held
    harness.advance_to(harness.clock.seconds() + 0.2)
    assert transport.value().startswith(b"HTTP/1.1 503 ")
    assert harness.layer.receive(["websocket.connect"], block=False)[1] == {"filler": True}
    harness.clock.advance(10)  # no retry is left behind to deliver a connect nobody waits for
    assert harness.layer.receive(["websocket.connect"], block=False) == (None, None)


def test_a_client_gone_while_its_connect_waits_for_room_leaves_nothing_behind():
    harness = Harness(layer=ChannelLayer(channel_capacity={"websocket.connect": 1}))
    harness.layer.send("websocket.connect", {"filler": True})
    transport = start_handshake(harness)
    harness.clock.advance(0.1)
    transport.protocol.connectionLost(Failure(ConnectionDone()))  # the client gave up
    assert harness.layer.receive(["websocket.connect"], block=False)[1] == {"filler": True}
    harness.clock.advance(10)
    # The application never heard of the connection: no late connect, no disconnect for it.
    assert harness.layer.receive(["websocket.connect", "websocket.disconnect"], block=False) == (None, None)
