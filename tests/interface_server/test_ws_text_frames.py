"""A payload sent to many sockets of one server (a group send) is framed once: the frames are still each exactly right."""

from __future__ import annotations

from interface_server.ws_framing import LARGE_PAYLOAD, SharedFrames
from interface_server.ws_limits import frame_header
from tests.interface_server.test_ws_timeouts import OP_TEXT, Harness

OP_BINARY = 0x2


def test_the_same_text_object_gets_the_same_frame_and_another_text_its_own():
    frames = SharedFrames()
    text = "héllo " * 3
    first = frames.frame(0x1, text)
    assert first == frame_header(0x1, len(text.encode())) + text.encode()
    assert frames.frame(0x1, text) is first  # built once
    other = "".join(["héllo "] * 3)  # equal, but another object: framed anew, the same bytes
    assert other is not text and frames.frame(0x1, other) == first and frames.frame(0x1, other) is not first
    assert frames.frame(0x1, "bye") == frame_header(0x1, 3) + b"bye"


def test_a_large_text_is_left_to_the_header_then_payload_writes():
    frames = SharedFrames()
    assert frames.frame(0x1, "x" * (LARGE_PAYLOAD - 2)) is not None  # a 4-byte header: still one write
    assert frames.frame(0x1, "x" * LARGE_PAYLOAD) is None


def test_sockets_given_one_message_object_each_get_the_whole_frame():
    harness = Harness()
    sockets = [harness.connect() for _ in range(3)]
    for conn in sockets:
        conn.accept()
    shared = {"text": "to everyone"}
    for conn in sockets:
        conn.reply(shared)
    sockets[1].reply({"text": "to one"})
    sockets[0].reply({"text": "x" * 70000})
    assert sockets[0].frames() == [(OP_TEXT, b"to everyone"), (OP_TEXT, b"x" * 70000)]
    assert sockets[1].frames() == [(OP_TEXT, b"to everyone"), (OP_TEXT, b"to one")]
    assert sockets[2].frames() == [(OP_TEXT, b"to everyone")]


def test_sockets_given_one_binary_payload_each_get_the_whole_frame():
    harness = Harness()
    sockets = [harness.connect() for _ in range(2)]
    for conn in sockets:
        conn.accept()
    shared = {"bytes": b"\x00\x01 to everyone"}
    for conn in sockets:
        conn.reply(shared)
    sockets[0].reply({"text": "\x00\x01 to everyone"})  # the same characters as text: a text frame
    assert sockets[0].frames() == [(OP_BINARY, b"\x00\x01 to everyone"), (OP_TEXT, b"\x00\x01 to everyone")]
    assert sockets[1].frames() == [(OP_BINARY, b"\x00\x01 to everyone")]
    frames = SharedFrames()
    data = b"abc"
    assert frames.frame(0x2, data) is frames.frame(0x2, data)
