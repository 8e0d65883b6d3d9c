"""Hypothesis fuzzing of the HTTP request reader and protocol, against a model of RFC 9112.

Four suites, each input fed whole and cut into random pieces:

* **valid requests** generated from a model (methods, percent-encoded
  targets, token field names, field values with tabs and obs-text,
  ``Content-Length`` or chunked bodies with extensions and trailers,
  several pipelined): each is read exactly as the model wrote it;
* **broken requests**: a valid one with one defect RFC 9112 says makes it
  unreadable (a bare CR or LF, a NUL or other CTL, an obs-fold, a space
  before a colon, a non-token name, a malformed or overflowing chunk size,
  conflicting lengths, a missing or doubled Host): it is refused with a 4xx
  and never read as a request; valid requests before it are unaffected;
* **arbitrary bytes**, raw and built from HTTP's own pieces: no exception,
  every refusal a 4xx (or 501/505), and one reading however the bytes are
  cut -- the same requests, the same refusal;
* the **protocol** fed those bytes through a StringTransport: no exception
  and no traceback logged; it either waits for more, dispatches requests,
  or answers one error status and closes.

``FUZZ_HTTP_EXAMPLES`` scales the number of examples (default 4000: 2,400
valid and 2,400 broken requests, 10,000 arbitrary inputs each read whole,
cut and byte by byte, and 3,000 through the protocol -- about 30 s here).
"""

from __future__ import annotations

import logging
import os
import string
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from interface_server.http_reader import RequestReader

from .conftest import HTTPHarness

EXAMPLES = int(os.environ.get("FUZZ_HTTP_EXAMPLES", "4000"))  # the baseline; each suite takes a multiple
MAX_HEAD = 400
MAX_BODY = 300
REFUSALS = {400, 413, 414, 431, 501, 505}



def fuzz(share: float) -> settings:
    """Settings for a suite running ``share`` x EXAMPLES examples (cheap suites run more)."""
    return settings(max_examples=max(1, int(EXAMPLES * share)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Field names the server (or llhttp) reads itself; the model adds them on purpose only.
STEERING = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "keep-alive",
            "proxy-connection", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
VALUE_CHARS = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
UNRESERVED = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as the model means it, and its bytes on the wire."""

    method: str
    raw_path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    framing: str  # "none", "length" or "chunked"
    chunks: list[tuple[int, bytes]] = field(default_factory=list)  # (size written, extension)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def head_lines(self) -> list[bytes]:
        target = self.raw_path + (("?" + self.query) if self.query else "")
        lines = [f"{self.method} {target} HTTP/1.1".encode(), b"Host: example.com"]
        lines += [name + b": " + value for name, value in self.headers]
        if self.framing == "length":
            lines.append(b"Content-Length: %d" % len(self.body))
        elif self.framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
        return lines

    def body_bytes(self) -> bytes:
        if self.framing == "length":
            return self.body
        if self.framing != "chunked":
            return b""
        out, offset = [], 0
        for size, extension in self.chunks:
            out.append(b"%x%s\r\n%s\r\n" % (size, extension, self.body[offset:offset + size]))
            offset += size
        out.append(b"0\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in self.trailers) + b"\r\n")
        return b"".join(out)

    def encode(self) -> bytes:
        return b"\r\n".join(self.head_lines()) + b"\r\n\r\n" + self.body_bytes()

    def expected(self) -> tuple:
        """What the reader must make of it: method, path, query, headers, body."""
        headers = [[b"host", b"example.com"]]
        headers += [[n.lower(), v] for n, v in self.headers if b"_" not in n]
        if self.framing == "length":
            headers.append([b"content-length", b"%d" % len(self.body)])
        elif self.framing == "chunked":
            headers.append([b"transfer-encoding", b"chunked"])
        path = unquote_to_bytes(self.raw_path).decode("utf-8", "replace") if "%" in self.raw_path else self.raw_path
        return self.method, path, self.query.encode(), headers, self.body


# Generated from bytes mapped onto an alphabet: much cheaper for Hypothesis than text strategies.
_TOKEN_MAP = bytes(TOKEN.encode()[c % len(TOKEN)] for c in range(256))
_QUERY_MAP = bytes((UNRESERVED + "?/%").encode()[c % (len(UNRESERVED) + 3)] for c in range(256))
field_names = st.binary(min_size=1, max_size=10).map(
    lambda b: b.translate(_TOKEN_MAP)).filter(lambda n: n.lower().decode() not in STEERING)


# A field value: visible characters and obs-text, spaces and tabs inside but not at the ends.
_VALUE_MAP = bytes(VALUE_CHARS[c % len(VALUE_CHARS)] if c % 16 else b" \t"[c % 32 // 16] for c in range(256))
field_values = st.binary(max_size=16).map(lambda b: b.translate(_VALUE_MAP).strip(b" \t"))


# A path: unreserved characters and percent-encoded bytes (of any value: the path is decoded as UTF-8).
_PATH_MAP = [UNRESERVED[c % len(UNRESERVED)] if c % 8 else f"%{c:02X}" for c in range(256)]
paths = st.binary(max_size=16).map(lambda b: "/" + "".join(_PATH_MAP[c] for c in b))


@st.composite
def requests(draw) -> Request:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]))
    headers = draw(st.lists(st.tuples(field_names, field_values), max_size=4))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    body = draw(st.binary(max_size=40)) if framing != "none" else b""
    query = draw(st.binary(max_size=10)).translate(_QUERY_MAP).decode()
    request = Request(method, draw(paths), query, headers, body, framing)
    if framing == "chunked":
        offset = 0
        while offset < len(body):
            size = draw(st.integers(1, len(body) - offset))
            extension = draw(st.sampled_from([b"", b";a=b", b";x", b';q="1 2"']))
            request.chunks.append((size, extension))
            offset += size
        request.trailers = draw(st.lists(st.tuples(field_names, field_values), max_size=2))
    return request


cut_points = st.lists(st.integers(0, 2**16), max_size=8)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces, cut at ``points`` (taken modulo its length)."""
    at = sorted({point % (len(data) + 1) for point in points})
    return [data[a:b] for a, b in zip([0, *at], [*at, len(data)]) if b > a]


def read(pieces: list[bytes], max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> tuple[RequestReader, tuple]:
    """Feed ``pieces``; return the reader and a summary of what it read."""
    reader = RequestReader(max_head, max_body)
    for piece in pieces:
        reader.feed(piece)
    summary = []
    for request in reader.requests:
        head = request.head
        summary.append((head and (head.method, head.path, head.query_string, head.headers, head.http_version),
                        bytes(request.body), request.complete, request.error and request.error.status))
    return reader, (tuple(summary), reader.upgrade, reader.truncated)


def head_refusals_alike(reading: tuple) -> tuple:
    """``reading`` with the codes of a refused head (400, 414, 431) made one."""
    summary, upgrade, truncated = reading
    alike = tuple(entry[:3] + ("refused head",) if entry[3] in (400, 414, 431) else entry for entry in summary)
    return alike, upgrade, truncated


# -- valid requests: read exactly as written ---------------------------------------------------------


@fuzz(0.6)
@given(st.lists(requests(), min_size=1, max_size=3), cut_points)
def test_valid_requests_are_read_as_the_model_wrote_them(batch, points):
    wire = b"".join(request.encode() for request in batch)
    reader, _ = read(cut(wire, points), max_head=10_000, max_body=10_000)
    got = list(reader.requests)
    assert len(got) == len(batch) and not reader.failed and not reader.truncated
    for request, parsed in zip(batch, got):
        head = parsed.head
        assert parsed.error is None and parsed.complete
        assert (head.method, head.path, head.query_string, head.headers, bytes(parsed.body)) == request.expected()
    event(f"{len(batch)} pipelined, {batch[0].framing}")


# -- broken requests: refused, never read ------------------------------------------------------------


def _insert(line: bytes, where: float, what: bytes) -> bytes:
    at = int(len(line) * where)
    return line[:at] + what + line[at:]


DEFECTS = {
    # name: (function(request, draw) -> wire bytes, statuses allowed)
    "bare LF ends a line": lambda r, d: _join_head(r, d, lambda lines, i: lines.__setitem__(i, lines[i] + b"\n")),
    "bare CR in a value": lambda r, d: _with_header(r, b"X-Bad", b"a\rb"),
    "bare CR then field": lambda r, d: _with_header(r, b"X-Bad", b"a\rX-Injected: yes"),
    "NUL in a value": lambda r, d: _with_header(r, b"X-Bad", b"a\x00b"),
    "CTL in a value": lambda r, d: _with_header(r, b"X-Bad", b"a" + bytes([d(st.sampled_from(
        [*range(1, 9), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f]))]) + b"b"),
    "NUL in a name": lambda r, d: _with_header(r, b"X\x00Bad", b"a"),
    "non-token name": lambda r, d: _with_header(r, b"X" + d(st.sampled_from(list(b'()<>@,;\\"/[]?={} \t'))).to_bytes(
        1, "big") + b"Bad", b"a"),
    "space before colon": lambda r, d: _with_header(r, b"X-Bad ", b"a"),
    "obs-fold": lambda r, d: _with_header(r, b"X-Bad", b"a\r\n" + d(st.sampled_from([b" ", b"\t"])) + b"b"),
    "no Host": lambda r, d: r.encode().replace(b"Host: example.com\r\n", b"", 1),
    "two Hosts": lambda r, d: r.encode().replace(b"Host: example.com\r\n", b"Host: a\r\nHost: b\r\n", 1),
    "bad Host": lambda r, d: r.encode().replace(b"Host: example.com", b"Host: " + d(st.sampled_from(
        [b"a b", b"a/b", b"a@b", b"[::1", b"a:b", b"a:1:2", b"%zz", b"a\\b"])), 1),
    "two lengths": lambda r, d: _with_header(r, b"Content-Length", b"%d" % (len(r.body) + 1), framing="length"),
    "length and chunked": lambda r, d: _with_header(r, b"Content-Length", b"%d" % len(r.body), framing="chunked"),
    "bad length": lambda r, d: _with_header(r.replace_framing("none"), b"Content-Length", d(st.sampled_from(
        [b"+1", b"-1", b"0x1", b"1 1", b"1,1", b"1_0", b"9" * 30, b"", b"a"]))),
    "chunk size prefix": lambda r, d: _chunked(r, d, lambda size: d(st.sampled_from([b"+", b"0x", b" ", b"-"])) + size),
    "chunk size infix": lambda r, d: _chunked(r, d, lambda size: size[:1] + b"_" + size[1:]),
    "chunk size overflow": lambda r, d: _chunked(r, d, lambda size: b"1" + b"0" * d(st.integers(16, 40))),
    "chunk size LF": lambda r, d: _chunked(r, d, None, line_end=b"\n"),
    "chunk data too long": lambda r, d: _chunked(r, d, None, extra=b"X"),
}


def _join_head(request: Request, draw, mutate) -> bytes:
    lines = request.head_lines()
    mutate(lines, draw(st.integers(0, len(lines) - 1)))
    return b"\r\n".join(lines).replace(b"\n\r\n", b"\n") + b"\r\n\r\n" + request.body_bytes()


def _with_header(request: Request, name: bytes, value: bytes, framing: str | None = None) -> bytes:
    if framing is not None:
        request = request.replace_framing(framing)
    lines = request.head_lines()
    lines.insert(2, name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.body_bytes()


def _chunked(request: Request, draw, size_mutation, line_end: bytes = b"\r\n", extra: bytes = b"") -> bytes:
    body = request.body or b"x"
    size = b"%x" % len(body)
    if size_mutation is not None:
        size = size_mutation(size)
    head = b"\r\n".join(request.replace_framing("chunked").head_lines()) + b"\r\n\r\n"
    return head + size + line_end + body + extra + b"\r\n0\r\n\r\n"


def _replace_framing(self: Request, framing: str) -> Request:
    copy = Request(self.method, self.raw_path, self.query, list(self.headers), self.body, framing)
    if framing == "chunked" and self.body:
        copy.chunks = [(len(self.body), b"")]
    return copy


Request.replace_framing = _replace_framing  # type: ignore[attr-defined]


@fuzz(0.6)
@given(requests(), st.sampled_from(sorted(DEFECTS)), st.booleans(), cut_points, st.data())
def test_a_request_with_a_defect_is_refused_and_never_read(request, defect, after_valid, points, data):
    wire = DEFECTS[defect](request, data.draw)
    prefix = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" if after_valid else b""
    reader, _ = read(cut(prefix + wire, points), max_head=10_000, max_body=10_000)
    got = list(reader.requests)
    if after_valid:
        first = got.pop(0)
        assert first.head.path == "/ok" and first.complete and first.error is None
    assert reader.failed, (defect, wire)
    assert len(got) == 1 and got[0].error is not None and got[0].error.status in {400, 501}, (defect, wire)
    event(defect)


# -- arbitrary bytes: one reading however they are cut ---------------------------------------------------

PIECES = [b"GET ", b"POST ", b"/", b"/a?b=c", b" HTTP/1.1", b" HTTP/1.0", b"HTTP/2.0", b"\r\n", b"\r\n\r\n",
          b"\n", b"\r", b": ", b":", b" ", b"\t", b"Host", b"Host: x\r\n", b"Content-Length", b"Content-Length: 5\r\n",
          b"Transfer-Encoding", b"Transfer-Encoding: chunked\r\n", b"chunked", b"Connection: close\r\n",
          b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"Expect: 100-continue\r\n", b"X_Y: z\r\n",
          b"0", b"5", b"a", b"ff", b"10000000000000000", b";ext", b"\x00", b"\x7f", b"\xff", b",", b"-", b"+", b"_",
          b"%", b"%C3%A9", b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n", b"X" * 150]

hostile_bytes = st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))


@fuzz(2.5)
@given(hostile_bytes, cut_points)
def test_any_bytes_have_one_reading_or_a_4xx(data_in, points):
    _, whole = read([data_in])
    reader, pieces = read(cut(data_in, points))
    byte_by_byte = read([data_in[i:i + 1] for i in range(len(data_in))])[1]
    if len(data_in) > MAX_HEAD:
        # Past the head limit a refusal's code may depend on the cuts: fed in pieces, the limit is
        # crossed (414/431) before a bad byte further on arrives; fed whole, llhttp reports that byte
        # (400) before the field reaches the limit check. Either way the head is refused and nothing
        # of it is read; what was read before it, and that it was refused, must not depend on cuts.
        whole, pieces, byte_by_byte = (head_refusals_alike(reading) for reading in (whole, pieces, byte_by_byte))
    assert pieces == whole, data_in
    assert byte_by_byte == whole, data_in
    for request in reader.requests:
        if request.error is not None:
            assert request.error.status in REFUSALS
        head = request.head
        if head is not None:
            assert head.http_version in ("1.0", "1.1")
            for name, value in head.headers:
                assert name == name.lower() and b"_" not in name and name
                assert not set(name) - set(TOKEN.encode())
                assert b"\r" not in value and b"\n" not in value and b"\x00" not in value
                assert value == value.strip(b" \t")
            if request.complete and request.error is None and head.content_length is not None:
                assert len(request.body) == head.content_length
    event("refused" if reader.failed else ("read" if reader.requests else "waiting"))


# -- the protocol: no exception, one answer --------------------------------------------------------------


@fuzz(0.75)
@given(hostile_bytes, cut_points)
def test_the_protocol_answers_hostile_bytes_without_a_traceback(caplog, data_in, points):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="interface_server"):
        harness = HTTPHarness(max_header_size=MAX_HEAD, max_body_size=MAX_BODY, body_inline_limit=64)
        client = harness.connect()
        for piece in cut(data_in, points):
            client.send(piece)
        while (message := harness.receive()) is not None:
            client.reply(message["reply_channel"])
    written = client.transport.value()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    for response in written.split(b"HTTP/1.1 ")[1:]:
        status = int(response[:3])
        assert status == 200 or status in REFUSALS or status in (100, 503), written
        if status in REFUSALS:
            assert client.closed
