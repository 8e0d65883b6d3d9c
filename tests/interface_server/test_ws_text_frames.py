"""A payload sent to many sockets of one server (a group send) is framed once: the frames are still each exactly right."""

from __future__ import annotations

from interface_server.ws_framing import LARGE_PAYLOAD, SharedFrames
from interface_server.ws_limits import frame_header
from tests.interface_server.test_ws_timeouts import OP_TEXT, Harness

OP_BINARY = 0x2


def test_the_same_text_object_gets_the_same_frame_and_another_text_its_own():
    frames = SharedFrames()
    text = "héllo " * 3
    first = frames.parts(0x1, text)
    assert first == (frame_header(0x1, len(text.encode())) + text.encode(),)
    assert frames.parts(0x1, text) is first  # built once
    other = "".join(["héllo "] * 3)  # equal, but another object: framed anew, the same bytes
    assert other is not text and frames.parts(0x1, other) == first and frames.parts(0x1, other) is not first
    assert frames.parts(0x1, "bye") == (frame_header(0x1, 3) + b"bye",)


def test_a_large_text_is_written_as_its_header_then_its_payload_and_shared_too():
    frames = SharedFrames()
    assert len(frames.parts(0x1, "x" * (LARGE_PAYLOAD - 2))) == 1  # a 4-byte header: still one write
    large = "x" * LARGE_PAYLOAD
    parts = frames.parts(0x1, large)
    assert parts == (frame_header(0x1, LARGE_PAYLOAD), b"x" * LARGE_PAYLOAD)
    assert frames.parts(0x1, large) is parts  # encoded once for every member, however large


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
    large = {"text": "y" * 70000}  # a large shared payload: header and payload written apart, to each
    for conn in sockets[1:]:
        conn.reply(large)
    assert sockets[1].frames()[-1] == sockets[2].frames()[-1] == (OP_TEXT, b"y" * 70000)


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
    assert frames.parts(0x2, data) is frames.parts(0x2, data)
