"""WebSocket size limits and protocol errors (RFC 6455), bytes through a StringTransport.

Every case is one a hostile client can produce: a frame header announcing a
huge payload, a message over the limit in one frame or many, close frames
with codes no endpoint may send, invalid UTF-8. Each must get a close frame
with the right code, written before the connection closes (not a reset),
and nothing past the limit may be buffered.
"""

from __future__ import annotations

import logging
import struct

import pytest

from asgi_backends.inmemory import ChannelLayer
from interface_server.cli import build_parser, config_from_args
from interface_server.config import ServerConfig
from interface_server.ws_limits import frame_header, receive_envelope, receive_payload_limit
from interface_server.ws_protocol import PRE_OPEN_BUFFER, WSState

CLOSE_TIMEOUT = ServerConfig().websocket_close_timeout

from .test_ws_timeouts import OP_CLOSE, OP_PING, OP_TEXT, Harness

OP_CONTINUATION, OP_BINARY = 0x0, 0x2


def header(opcode: int, length: int, fin: bool = True) -> bytes:
    """A client frame header (masked, with an all-zero mask, so the payload goes as it is)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes((first, 0x80 | length))
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\0\0\0\0"


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return header(opcode, len(payload), fin) + payload


def close_code_of(frames: list[tuple[int, bytes]]) -> int | None:
    closes = [payload for opcode, payload in frames if opcode == OP_CLOSE]
    assert len(closes) <= 1, frames
    return struct.unpack("!H", closes[0][:2])[0] if closes else None


def disconnect_code(harness: Harness, conn) -> int:
    """Lose the connection (as the transport would) and return the websocket.disconnect code."""
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    if conn.protocol.ws_state is not WSState.CLOSED:
        conn.protocol.connectionLost(Failure(ConnectionDone()))
    channel, message = harness.layer.receive(["websocket.disconnect"], block=False)
    assert channel == "websocket.disconnect"
    return message["code"]


def open_connection(harness: Harness):
    conn = harness.connect()
    conn.accept()
    return conn


def closed_gracefully(conn) -> bool:
    """True if the server asked the transport to close after writing (not an abort, which loses the close frame)."""
    return conn.transport.disconnecting and not conn.transport.disconnected


@pytest.fixture
def caplog_ws(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


# -- message and frame size ---------------------------------------------------------------


def test_default_message_limit_is_the_layers_less_the_receive_envelope():
    layer = ChannelLayer(max_message_size=4096)
    harness = Harness(layer=layer)
    conn = open_connection(harness)
    limit = receive_payload_limit(layer, conn.reply_channel, "/ws/room")
    assert limit == 4096 - receive_envelope(conn.reply_channel, "/ws/room")
    assert conn.protocol.maxMessagePayloadSize == limit == conn.protocol.maxFramePayloadSize
    # Exactly the limit: it fits the layer (no MessageTooLarge), text and bytes alike.
    conn.send(OP_TEXT, b"t" * limit)
    conn.protocol.dataReceived(frame(OP_BINARY, b"\xff" * limit))
    assert conn.frames() == []
    _, text = layer.receive(["websocket.receive"], block=False)
    _, binary = layer.receive(["websocket.receive"], block=False)
    assert len(text["text"]) == limit and len(binary["bytes"]) == limit
    assert len(layer.encode(text)) <= 4096 and len(layer.encode(binary)) <= 4096
    # One byte more: 1009, before the payload arrives.
    conn.protocol.dataReceived(header(OP_TEXT, limit + 1))
    assert close_code_of(conn.frames()) == 1009
    assert closed_gracefully(conn)
    assert disconnect_code(harness, conn) == 1009
    assert layer.receive(["websocket.receive"], block=False) == (None, None)


def test_the_layer_default_allows_about_a_mebibyte():
    harness = Harness()
    conn = open_connection(harness)
    assert 1024 * 1024 - 300 < conn.protocol.maxMessagePayloadSize < 1024 * 1024


def test_huge_frame_header_is_refused_at_once_and_its_payload_never_buffered():
    harness = Harness()
    conn = open_connection(harness)
    # A header announcing 2**62 bytes, then the payload trickling in.
    conn.protocol.dataReceived(header(OP_TEXT, 2**62))
    assert close_code_of(conn.frames()) == 1009
    assert closed_gracefully(conn)
    for _ in range(1000):
        conn.protocol.dataReceived(b"a" * 1024)
    assert conn.protocol.data == b""
    assert not conn.protocol.frame_data and not getattr(conn.protocol, "message_data", None)
    assert conn.frames() == []  # nothing more is written, either
    assert disconnect_code(harness, conn) == 1009


def test_twenty_megabyte_message_closes_1009_not_1011():
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(header(OP_TEXT, 20 * 1024 * 1024) + b"x" * 65536)
    assert close_code_of(conn.frames()) == 1009
    assert conn.protocol.data == b""
    assert disconnect_code(harness, conn) == 1009


def test_message_limit_counts_every_frame_of_a_fragmented_message():
    harness = Harness(websocket_max_message_size=1000, websocket_max_frame_size=400)
    conn = open_connection(harness)
    # 400 + 400 + 200 = 1000: at the limit, delivered as one message.
    conn.protocol.dataReceived(frame(OP_TEXT, b"a" * 400, fin=False) + frame(OP_CONTINUATION, b"b" * 400, fin=False)
                               + frame(OP_CONTINUATION, b"c" * 200))
    _, message = harness.layer.receive(["websocket.receive"], block=False)
    assert message["text"] == "a" * 400 + "b" * 400 + "c" * 200
    # 400 + 400 + 201: the third header crosses the limit.
    conn.protocol.dataReceived(frame(OP_TEXT, b"a" * 400, fin=False) + frame(OP_CONTINUATION, b"b" * 400, fin=False))
    assert conn.frames() == []
    conn.protocol.dataReceived(header(OP_CONTINUATION, 201))
    assert close_code_of(conn.frames()) == 1009
    assert harness.layer.receive(["websocket.receive"], block=False) == (None, None)


def test_frame_limit_edge():
    harness = Harness(websocket_max_frame_size=100)
    conn = open_connection(harness)
    conn.protocol.dataReceived(frame(OP_BINARY, b"x" * 100))
    assert harness.layer.receive(["websocket.receive"], block=False)[1]["bytes"] == b"x" * 100
    conn.protocol.dataReceived(header(OP_BINARY, 101))
    assert close_code_of(conn.frames()) == 1009


def test_explicit_message_limit_edge_and_cli_options():
    harness = Harness(websocket_max_message_size=10)
    conn = open_connection(harness)
    conn.send(OP_TEXT, b"0123456789")
    assert harness.layer.receive(["websocket.receive"], block=False)[1]["text"] == "0123456789"
    conn.send(OP_TEXT, b"0123456789a")
    assert close_code_of(conn.frames()) == 1009

    parser = build_parser()

    def config(*argv):
        return config_from_args(parser.parse_args(["m:layer", *argv]), None)

    assert config().websocket_max_message_size is None and config().websocket_max_frame_size is None
    assert config("--websocket-max-message-size", "65536").websocket_max_message_size == 65536
    assert config("--websocket-max-frame-size", "4096").websocket_max_frame_size == 4096
    for name in ("websocket_max_message_size", "websocket_max_frame_size"):
        with pytest.raises(ValueError, match=name):
            ServerConfig(**{name: 0})


def test_message_the_layer_refuses_closes_1009(caplog_ws):
    # A limit set above what the layer carries: the layer's MessageTooLarge becomes 1009, with a warning.
    layer = ChannelLayer(max_message_size=1000)
    harness = Harness(layer=layer, websocket_max_message_size=5000)
    conn = open_connection(harness)
    conn.send(OP_TEXT, b"x" * 2000)
    assert close_code_of(conn.frames()) == 1009
    assert "Traceback" not in caplog_ws.text


def test_application_may_send_messages_larger_than_the_clients_limit():
    harness = Harness(websocket_max_message_size=10)
    conn = open_connection(harness)
    conn.reply({"text": "x" * 70000})
    conn.reply({"bytes": b"y" * 200})
    assert conn.frames() == [(OP_TEXT, b"x" * 70000), (0x2, b"y" * 200)]
    assert frame_header(0x1, 70000)[:2] == b"\x81\x7f"


# -- close frames with codes no endpoint may send ----------------------------------------------


@pytest.mark.parametrize("payload", [
    struct.pack("!H", 999), struct.pack("!H", 1004), struct.pack("!H", 1005), struct.pack("!H", 1006),
    struct.pack("!H", 1015), struct.pack("!H", 2999), struct.pack("!H", 5000), b"\x03",
    struct.pack("!H", 1000) + b"r" * 124,  # a 126-byte close payload
], ids=["999", "1004", "1005", "1006", "1015", "2999", "5000", "one-byte", "126-bytes"])
def test_invalid_close_frame_gets_1002_before_the_connection_closes(payload, caplog_ws):
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(frame(OP_CLOSE, payload))
    assert close_code_of(conn.frames()) == 1002
    # Closed after the frame has been written, not aborted (which discards it: a reset).
    assert closed_gracefully(conn)
    assert disconnect_code(harness, conn) == 1002
    assert "Traceback" not in caplog_ws.text


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1013, 3000, 4999])
def test_valid_close_frame_is_answered_and_its_code_passed_on(code):
    harness = Harness()
    conn = open_connection(harness)
    conn.send(OP_CLOSE, struct.pack("!H", code) + b"bye")
    assert close_code_of(conn.frames()) == 1000  # the answer; RFC 6455 does not require an echo
    assert closed_gracefully(conn)
    assert disconnect_code(harness, conn) == code


def test_close_reason_must_be_utf8():
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"))
    assert close_code_of(conn.frames()) == 1007


def test_huge_control_frame_is_refused_and_never_buffered():
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(header(OP_PING, 2**62))
    assert close_code_of(conn.frames()) == 1002
    for _ in range(200):
        conn.protocol.dataReceived(b"p" * 4096)
    assert conn.protocol.data == b"" and not getattr(conn.protocol, "control_frame_data", None)
    assert conn.frames() == []


def test_nothing_is_read_after_a_protocol_error():
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(frame(0x3, b"reserved opcode") + frame(OP_TEXT, b"after"))
    conn.protocol.dataReceived(frame(OP_TEXT, b"later"))
    assert close_code_of(conn.frames()) == 1002
    assert harness.layer.receive(["websocket.receive"], block=False) == (None, None)


# -- invalid UTF-8 ------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [
    [frame(OP_TEXT, b"\xff\xfe")],
    [frame(OP_TEXT, b"ok \xed\xa0\x80")],  # a UTF-16 surrogate
    [frame(OP_TEXT, b"\xc3")],  # ends inside a code point
    [frame(OP_TEXT, b"caf\xc3", fin=False), frame(OP_CONTINUATION, b"(")],  # invalid across frames
], ids=["bad-bytes", "surrogate", "truncated", "split"])
def test_invalid_utf8_closes_1007(frames):
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(b"".join(frames))
    assert close_code_of(conn.frames()) == 1007
    assert closed_gracefully(conn)
    assert disconnect_code(harness, conn) == 1007
    assert harness.layer.receive(["websocket.receive"], block=False) == (None, None)


def test_utf8_split_across_frames_is_fine():
    harness = Harness()
    conn = open_connection(harness)
    conn.protocol.dataReceived(frame(OP_TEXT, b"caf\xc3", fin=False) + frame(OP_CONTINUATION, b"\xa9"))
    assert harness.layer.receive(["websocket.receive"], block=False)[1]["text"] == "caf\u00e9"


# -- closing takes a bounded time ----------------------------------------------------------------


def test_close_without_an_answer_is_aborted_after_the_close_timeout():
    harness = Harness(ping_interval=0)
    conn = open_connection(harness)
    conn.reply({"close": 4000})
    assert close_code_of(conn.frames()) == 4000
    harness.advance_to(CLOSE_TIMEOUT)
    assert not conn.transport.disconnected
    harness.advance_to(CLOSE_TIMEOUT + 0.01)
    assert conn.transport.disconnected  # aborted
    assert disconnect_code(harness, conn) == 4000


def test_the_close_timeout_is_an_option():
    harness = Harness(ping_interval=0, websocket_close_timeout=0.5)
    conn = open_connection(harness)
    conn.reply({"close": 4000})
    harness.advance_to(0.5)
    assert not conn.transport.disconnected
    harness.advance_to(0.51)
    assert conn.transport.disconnected
    parser = build_parser()
    assert config_from_args(parser.parse_args(["m:layer", "--websocket-close-timeout", "2"]), None) \
        .websocket_close_timeout == 2.0
    with pytest.raises(ValueError, match="websocket_close_timeout"):
        ServerConfig(websocket_close_timeout=0)


def test_failed_connection_that_does_not_go_is_aborted_after_the_close_timeout():
    harness = Harness(ping_interval=0)
    conn = open_connection(harness)
    harness.advance_to(1)
    conn.protocol.dataReceived(header(OP_TEXT, 2**40))
    assert close_code_of(conn.frames()) == 1009 and closed_gracefully(conn)
    harness.advance_to(1 + CLOSE_TIMEOUT)
    assert not conn.transport.disconnected
    harness.advance_to(1.01 + CLOSE_TIMEOUT)
    assert conn.transport.disconnected


# -- bytes sent while the handshake is held --------------------------------------------------------


def test_reading_pauses_while_a_held_handshake_has_too_much_buffered():
    harness = Harness()
    conn = harness.connect()
    early = frame(OP_BINARY, b"e" * 1000)
    sent = 0
    while sent <= PRE_OPEN_BUFFER:
        assert conn.transport.producerState == "producing"
        conn.protocol.dataReceived(early)
        sent += len(early)
    assert conn.transport.producerState == "paused"
    conn.accept()
    assert conn.transport.producerState == "producing"
    received = 0
    while harness.layer.receive(["websocket.receive"], block=False)[0]:
        received += 1
    assert received == sent // len(early)
