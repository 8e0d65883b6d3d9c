"""Parsing an HTTP/1.x request head into the pieces an ``http.request`` needs.

Kept free of Twisted so it can be tested (and profiled) alone. Everything
here runs once per request, so it avoids regular expressions on the hot
path and compiles what it needs at import time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["HTTPError", "RequestHead", "parse_head"]

# RFC 9110 token characters, for methods and header names.
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/1.0": "1.0"}


class HTTPError(Exception):
    """A request the server answers with an error status and then closes.

    Attributes:
        status: the HTTP status code to answer with.
        reason: a short explanation for the client (and the log).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class RequestHead:
    """The parsed request line and headers of one request."""

    method: str
    target: bytes
    path: str
    query_string: bytes
    http_version: str
    headers: list[list[bytes]]
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    websocket: bool = False
    forwarded_for: bytes | None = None
    forwarded_port: bytes | None = None
    forwarded_proto: bytes | None = None


def _split_target(target: bytes) -> tuple[bytes, bytes]:
    """Return (raw path, raw query string) of a request target."""
    if target[:1] != b"/":
        if target == b"*":
            return b"*", b""
        if target.startswith((b"http://", b"https://")):
            # Absolute form (what proxies receive): drop scheme and authority.
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash >= 0 else b"/"
        else:
            raise HTTPError(400, "Malformed request target")
    path, _, query = target.partition(b"?")
    if b"#" in query:
        query = query.partition(b"#")[0]
    return path, query


def parse_head(head: bytes) -> RequestHead:
    """Parse a request head (everything before the blank line).

    Returns:
        The :class:`RequestHead`.

    Raises:
        HTTPError: the head is malformed (400), uses an HTTP version other
            than 1.0/1.1 (505) or a transfer coding other than chunked (501).
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HTTPError(400, "Malformed request line")
    method, target, version = parts
    http_version = _VERSIONS.get(version)
    if http_version is None:
        if version.startswith(b"HTTP/") and version[5:6].isdigit():
            raise HTTPError(505, "HTTP version not supported")
        raise HTTPError(400, "Malformed request line")
    if not _TOKEN.match(method):
        raise HTTPError(400, "Malformed request method")
    if not target or any(c < 0x21 or c > 0x7E for c in target):
        raise HTTPError(400, "Malformed request target")
    raw_path, query = _split_target(target)
    path = unquote_to_bytes(raw_path).decode("utf-8", "replace")

    headers: list[list[bytes]] = []
    content_length = None
    chunked = False
    connection = b""
    expect = b""
    upgrade = b""
    head_ = RequestHead(method.decode("ascii"), target, path, query, http_version, headers)
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1:] in b" \t" or line[:1] in b" \t":
            raise HTTPError(400, "Malformed header line")
        name = name.lower()
        value = value.strip(b" \t")
        headers.append([name, value])
        # Only a handful of headers steer the server; match them cheaply by length first.
        if name == b"content-length":
            if not value.isdigit():
                raise HTTPError(400, "Malformed Content-Length")
            length = int(value)
            if content_length is not None and content_length != length:
                raise HTTPError(400, "Conflicting Content-Length headers")
            content_length = length
        elif name == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise HTTPError(501, "Only the chunked transfer coding is supported")
            chunked = True
        elif name == b"connection":
            connection = value.lower()
        elif name == b"expect":
            expect = value.lower()
        elif name == b"upgrade":
            upgrade = value.lower()
        elif name == b"x-forwarded-for":
            head_.forwarded_for = value
        elif name == b"x-forwarded-port":
            head_.forwarded_port = value
        elif name == b"x-forwarded-proto":
            head_.forwarded_proto = value
    if chunked and content_length is not None:
        raise HTTPError(400, "Both Content-Length and Transfer-Encoding given")
    if chunked and http_version == "1.0":
        raise HTTPError(400, "Chunked request bodies need HTTP/1.1")
    head_.content_length = content_length
    head_.chunked = chunked
    if http_version == "1.1":
        head_.keep_alive = b"close" not in connection
    else:
        head_.keep_alive = b"keep-alive" in connection
    head_.expect_continue = expect == b"100-continue" and http_version == "1.1"
    head_.websocket = upgrade == b"websocket" and b"upgrade" in connection
    return head_


class ChunkedDecoder:
    """Incremental decoder of a chunked request body.

    :meth:`feed` takes a bytearray buffer, consumes what it can, and returns
    the decoded data; :attr:`done` turns true after the last chunk and trailers.
    """

    __slots__ = ("remaining", "done", "_state")

    def __init__(self) -> None:
        self.remaining = 0
        self.done = False
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers

    def feed(self, buffer: bytearray) -> bytes:
        """Consume chunk framing from ``buffer`` (in place); return body bytes.

        Raises:
            HTTPError: malformed chunk framing (400).
        """
        out = bytearray()
        while not self.done:
            if self._state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1024:
                        raise HTTPError(400, "Malformed chunk size line")
                    break
                size_text = bytes(buffer[:end]).partition(b";")[0].strip()
                del buffer[: end + 2]
                try:
                    self.remaining = int(size_text, 16)
                except ValueError:
                    raise HTTPError(400, "Malformed chunk size") from None
                if self.remaining < 0:
                    raise HTTPError(400, "Malformed chunk size")
                self._state = "data" if self.remaining else "trailers"
            elif self._state == "data":
                take = min(self.remaining, len(buffer))
                if not take:
                    break
                out += buffer[:take]
                del buffer[:take]
                self.remaining -= take
                if not self.remaining:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise HTTPError(400, "Malformed chunk terminator")
                del buffer[:2]
                self._state = "size"
            else:  # trailers: lines until an empty one; their content is ignored
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 8192:
                        raise HTTPError(400, "Trailers too large")
                    break
                del buffer[: end + 2]
                if end == 0:
                    self.done = True
        return bytes(out)
