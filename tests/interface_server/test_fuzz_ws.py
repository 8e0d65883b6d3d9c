"""Hypothesis fuzzing of WebSocket frames fed to the protocol, against a model of RFC 6455.

Each example opens a connection (through a StringTransport, as in
``test_ws_timeouts``), feeds it a generated sequence of client frames --
valid and broken ones: reserved opcodes and bits, unmasked frames,
fragmented control frames, non-minimal lengths, out-of-place continuations,
invalid UTF-8, close codes no endpoint may send, headers announcing payloads
far over the limits -- cut into random chunks, and checks the result
against :func:`expected`, a reading of RFC 6455 written here independently:

* no exception escapes the protocol;
* every message completed before the first error reaches the layer, in
  order, and nothing after it;
* every ping before it is answered by a pong with its payload;
* a broken input gets exactly one close frame, the last thing written, with
  the code RFC 6455 asks for (1002 protocol error, 1007 invalid payload,
  1009 too big), and the connection is then closed gracefully (not reset);
* a valid close frame is answered with a close frame and the application is
  told the client's code; an input without either leaves the socket open.

``FUZZ_WS_EXAMPLES`` sets the number of examples (default 3000, about 12 s here).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from interface_server.ws_protocol import WSState

from .test_ws_timeouts import Harness, server_frames

MAX_MESSAGE = 300
MAX_FRAME = 200
EXAMPLES = int(os.environ.get("FUZZ_WS_EXAMPLES", "3000"))

# Close codes a client may send, as Autobahn reads RFC 6455 and the IANA
# registry (it predates 1014's registration, and refuses it).
ALLOWED_CLOSE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013}


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    length_form: str = "minimal"  # or "16", "64" (non-minimal when the payload is short), "huge"
    declared: int | None = None  # for "huge": the length the header announces

    def encode(self) -> bytes:
        first = (0x80 if self.fin else 0) | (self.rsv << 4) | self.opcode
        mask_bit = 0x80 if self.masked else 0
        length = self.declared if self.length_form == "huge" else len(self.payload)
        form = self.length_form
        if form == "minimal":
            form = "7" if length < 126 else "16" if length < 65536 else "64"
        if form == "huge":
            form = "16" if length < 65536 else "64"
        if form == "7":
            head = bytes((first, mask_bit | length))
        elif form == "16":
            head = struct.pack("!BBH", first, mask_bit | 126, length)
        else:
            head = struct.pack("!BBQ", first, mask_bit | 127, length)
        if not self.masked:
            return head + self.payload
        mask = b"\x37\xfa\x21\x3d"
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(self.payload))


def text_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.text(max_size=60).map(lambda s: s.encode("utf-8")),
        st.binary(max_size=40),
        st.sampled_from([b"\xc3", b"\xa9", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82"]),
        st.integers(100, 260).map(lambda n: b"u" * n),
    )


def close_payloads() -> st.SearchStrategy[bytes]:
    codes = st.one_of(st.sampled_from(sorted(ALLOWED_CLOSE | {999, 1004, 1005, 1006, 1014, 1015, 2999, 3000,
                                                               4999, 5000, 0, 65535})),
                      st.integers(0, 65535))
    reasons = st.one_of(st.text(max_size=20).map(lambda s: s.encode("utf-8")), st.just(b"\xff"),
                        st.just(b"r" * 124))
    return st.one_of(st.just(b""), st.binary(min_size=1, max_size=1),
                     st.tuples(codes, reasons).map(lambda cr: struct.pack("!H", cr[0]) + cr[1]))


@st.composite
def broken_or_odd_frame(draw) -> Frame:
    """Any one frame, valid or not: reserved opcodes and bits, odd lengths, stray continuations, huge headers."""
    kind = draw(st.sampled_from(["text", "binary", "continuation", "ping", "pong", "close", "reserved", "huge"]))
    fin = draw(st.booleans()) if kind in ("text", "binary", "continuation") else draw(
        st.sampled_from([True, True, True, False]))
    rsv = draw(st.sampled_from([0] * 6 + [1, 2, 4, 7]))
    masked = draw(st.sampled_from([True] * 6 + [False]))
    form = draw(st.sampled_from(["minimal"] * 6 + ["16", "64"]))
    if kind == "huge":
        opcode = draw(st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9]))
        declared = draw(st.sampled_from([MAX_FRAME + 1, MAX_MESSAGE + 1, 2**16, 2**40, 2**62, 2**63 + 5]))
        trailing = draw(st.binary(max_size=64))
        return Frame(opcode, trailing, fin, rsv, masked, "huge", declared)
    if kind in ("text", "continuation"):
        payload = draw(text_payloads())
        opcode = 0x1 if kind == "text" else 0x0
    elif kind == "binary":
        payload, opcode = draw(st.binary(max_size=220)), 0x2
    elif kind in ("ping", "pong"):
        payload, opcode = draw(st.one_of(st.binary(max_size=125), st.binary(min_size=126, max_size=130))), (
            0x9 if kind == "ping" else 0xA)
    elif kind == "close":
        payload, opcode = draw(close_payloads()), 0x8
    else:
        payload, opcode = draw(st.binary(max_size=10)), draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]))
    return Frame(opcode, payload, fin, rsv, masked, form)


@st.composite
def message_frames(draw) -> list[Frame]:
    """A well-formed message, perhaps fragmented (a text one anywhere, inside a code point too), pings between."""
    if draw(st.booleans()):
        opcode, payload = 0x1, draw(st.one_of(st.text(max_size=80).map(lambda t: t.encode("utf-8")),
                                              text_payloads()))
    else:
        opcode, payload = 0x2, draw(st.binary(max_size=360))  # up to past MAX_MESSAGE
    cuts = sorted(set(draw(st.lists(st.integers(0, len(payload)), max_size=3))))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    result = []
    for i, piece in enumerate(pieces):
        result.append(Frame(opcode if i == 0 else 0x0, piece, fin=i == len(pieces) - 1))
        if draw(st.integers(0, 5)) == 0 and i < len(pieces) - 1:
            result.append(Frame(0x9, draw(st.binary(max_size=20))))
    return result


def frame_sequences() -> st.SearchStrategy[list[Frame]]:
    part = st.one_of(
        message_frames(),
        message_frames(),
        st.builds(lambda payload: [Frame(0x9, payload)], st.binary(max_size=125)),
        st.builds(lambda payload: [Frame(0xA, payload)], st.binary(max_size=125)),
        st.builds(lambda payload: [Frame(0x8, payload)], close_payloads()),
        st.builds(lambda frame: [frame], broken_or_odd_frame()),
    )
    return st.lists(part, min_size=1, max_size=6).map(lambda parts: [frame for p in parts for frame in p])


@dataclass
class Outcome:
    messages: list[tuple[str, bytes]]
    pongs: list[bytes]
    close: int | None = None  # the code of the server's close frame; None: the socket stays open
    client_code: int | None = None  # the code the application hears of, for a client close


def header_error(frame: Frame, in_message: bool) -> int | None:
    """The close code for what the frame's header alone gets wrong, or None."""
    control = frame.opcode >= 8
    if frame.rsv or not frame.masked:
        return 1002
    if control:
        length = frame.declared if frame.length_form == "huge" else len(frame.payload)
        if not frame.fin or length > 125 or frame.opcode not in (8, 9, 10):
            return 1002
        if frame.opcode == 8 and length == 1:
            return 1002
    else:
        if frame.opcode not in (0, 1, 2):
            return 1002
        if frame.opcode == 0 and not in_message:
            return 1002
        if frame.opcode != 0 and in_message:
            return 1002
    length = frame.declared if frame.length_form == "huge" else len(frame.payload)
    if frame.length_form == "16" and length < 126 or frame.length_form == "64" and length < 65536:
        return 1002  # not the minimal length encoding
    if length >= 2**63:
        return 1002
    return None


def utf8_so_far(data: bytes, final: bool) -> bool:
    """True if ``data`` is UTF-8, or (not ``final``) could still become UTF-8: fail fast, as RFC 6455 wants."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Only an incomplete last code point may still be completed by later bytes.
        return not final and exc.reason == "unexpected end of data"
    return True


def expected(sequence: list[Frame]) -> Outcome:
    """What RFC 6455 asks of a server reading ``sequence`` (with this suite's size limits)."""
    outcome = Outcome([], [])
    in_message = False
    message_type = ""
    message = b""
    for frame in sequence:
        error = header_error(frame, in_message)
        if error:
            outcome.close = error
            return outcome
        length = frame.declared if frame.length_form == "huge" else len(frame.payload)
        if frame.opcode < 8:
            if frame.opcode != 0:
                in_message, message, message_type = True, b"", "text" if frame.opcode == 1 else "bytes"
            if len(message) + length > MAX_MESSAGE or length > MAX_FRAME:
                outcome.close = 1009
                return outcome
            if frame.length_form == "huge":
                return outcome  # the rest of its payload never comes: waiting for it
            message += frame.payload
            if message_type == "text" and not utf8_so_far(message, final=frame.fin):
                outcome.close = 1007
                return outcome
            if frame.fin:
                outcome.messages.append((message_type, message))
                in_message = False
            continue
        if frame.length_form == "huge":
            return outcome
        if frame.opcode == 9:
            outcome.pongs.append(frame.payload)
        elif frame.opcode == 8:
            payload = frame.payload
            code = struct.unpack("!H", payload[:2])[0] if payload else None
            if code is not None and not (code in ALLOWED_CLOSE or 3000 <= code <= 4999):
                outcome.close = 1002
                return outcome
            try:
                payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                outcome.close = 1007
                return outcome
            outcome.close = 1000
            outcome.client_code = code if code is not None else 1005
            return outcome
    return outcome


def cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(cuts, cuts[1:])]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sequence=frame_sequences(), points=st.lists(st.integers(0, 10**6), max_size=6))
def test_every_frame_sequence_is_handled_or_closed_with_the_right_code(sequence, points):
    harness = Harness(websocket_max_message_size=MAX_MESSAGE, websocket_max_frame_size=MAX_FRAME, ping_interval=0)
    conn = harness.connect()
    conn.accept()
    data = b"".join(frame.encode() for frame in sequence)
    for chunk in cut(data, points):
        conn.protocol.dataReceived(chunk)  # must not raise
    want = expected(sequence)
    event(f"close {want.close}" if want.close else f"open, {len(want.messages)} message(s)")
    written = server_frames(conn.transport.value())
    closes = [i for i, (opcode, _) in enumerate(written) if opcode == 0x8]
    pongs = [payload for opcode, payload in written if opcode == 0xA]
    received = []
    while True:
        channel, message = harness.layer.receive(["websocket.receive"], block=False)
        if channel is None:
            break
        received.append(("text", message["text"].encode("utf-8")) if "text" in message else ("bytes", message["bytes"]))
    assert received == want.messages
    assert pongs == want.pongs
    if want.close is None:
        assert closes == [] and conn.protocol.ws_state is WSState.OPEN
        assert not conn.transport.disconnecting
        return
    assert len(closes) == 1 and closes[0] == len(written) - 1, written
    code = struct.unpack("!H", written[closes[0]][1][:2])[0]
    assert code == want.close, (code, want, sequence)
    assert conn.transport.disconnecting and not conn.transport.disconnected  # graceful, not a reset
    conn.protocol.connectionLost(Failure(ConnectionDone()))
    channel, disconnect = harness.layer.receive(["websocket.disconnect"], block=False)
    assert channel == "websocket.disconnect"
    assert disconnect["code"] == (want.client_code or want.close)
