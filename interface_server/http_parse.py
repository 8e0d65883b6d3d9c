"""What the server itself decides about an HTTP/1.x request head, beyond llhttp's framing.

llhttp (:mod:`interface_server.http_reader`) reads the bytes; what it
leaves to us is here: the ``Host`` rules (RFC 9112 section 3.2), body size
limits, transfer codings other than chunked (501), HTTP versions other
than 1.0/1.1 (505), and the ASGI ``path``/``query_string``. Kept free of
Twisted (and of llhttp) so it can be tested alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["STEERING", "HTTPError", "ParsedRequest", "RequestHead", "check_head", "split_target", "valid_host"]

# The HTTP versions served, as llhttp spells them and as ASGI does.
_VERSIONS = {"1.1": "1.1", "1.0": "1.0"}

# RFC 3986 host [ ":" port ]: an IP literal, or a reg-name (IPv4 addresses are reg-names too).
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+(?:%25[0-9A-Za-z\-._~]+)?\]|(?:[0-9A-Za-z\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    rb"(?::[0-9]*)?"
)

# reg-name characters (RFC 3986), "%" of pct-encoded included: a Host of only these needs no regex.
_REG_NAME = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%"

# The headers the server itself reads (check_head gets their values); the rest only go to the application.
STEERING = frozenset({
    b"host", b"content-length", b"transfer-encoding", b"expect", b"upgrade",
    b"x-forwarded-for", b"x-forwarded-port", b"x-forwarded-proto",
})

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
    """The parsed request line and headers of one request.

    ``headers`` are ``[name, value]`` pairs, names lowercased, in order,
    without the names that contain ``_``; ``size`` is about how many bytes
    the head took on the wire.
    """

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
    size: int = 0

    def encode(self) -> bytes:
        """Return the head as bytes again (names lowercased, ``_`` names left out), blank line included."""
        lines = [b"%s %s HTTP/%s" % (self.method.encode("ascii"), self.target, self.http_version.encode("ascii"))]
        lines += [name + b": " + value for name, value in self.headers]
        return b"\r\n".join(lines) + b"\r\n\r\n"


class ParsedRequest:
    """One request as far as it has been read.

    Attributes:
        head: its head; ``None`` only for an error before any head was read.
        body: body bytes read and not yet taken (the reader appends, the
            connection takes).
        complete: the whole body has been read.
        error: why the stream cannot be read past this point, if it cannot.
    """

    __slots__ = ("head", "body", "complete", "error", "body_size")

    def __init__(self, head: RequestHead | None, error: HTTPError | None = None) -> None:
        self.head = head
        self.body = bytearray()
        self.complete = False
        self.error = error
        self.body_size = 0

    def take_body(self) -> bytes:
        """Return the body bytes read so far and not yet taken."""
        data = bytes(self.body)
        self.body.clear()
        return data


def split_target(target: bytes) -> tuple[str, bytes]:
    """Return the ASGI ``path`` (percent-decoded, UTF-8) and raw ``query_string`` of a request target.

    Raises:
        HTTPError: the target is not origin-form, absolute-form (http/https)
            or ``*`` (400).
    """
    if target == b"/":
        return "/", b""
    if target[:1] != b"/":
        if target == b"*":
            return "*", b""
        if target.startswith((b"http://", b"https://")):
            # Absolute form (what proxies receive): drop scheme and authority.
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash >= 0 else b"/"
        else:
            raise HTTPError(400, "Malformed request target")
    raw_path, _, query = target.partition(b"?")
    if b"#" in query:
        query = query.partition(b"#")[0]
    elif b"#" in raw_path:
        raw_path = raw_path.partition(b"#")[0]
    if b"%" in raw_path:
        return unquote_to_bytes(raw_path).decode("utf-8", "replace"), query
    return raw_path.decode("latin-1"), query  # llhttp allows only ASCII here


def check_head(head: RequestHead, steer: dict[bytes, list[bytes]], upgrade: bool, max_body_size: int) -> None:
    """Apply the rules llhttp leaves to us to a head; fill in what they decide.

    Args:
        head: the head as read; ``chunked``, ``content_length``,
            ``expect_continue``, ``websocket`` and ``forwarded_*`` are set here.
        steer: the values of the headers in ``STEERING``, by name, in order.
        upgrade: llhttp saw ``Connection: upgrade`` with ``Upgrade``.
        max_body_size: the largest ``Content-Length`` accepted.

    Raises:
        HTTPError: the request breaks one of them.
    """
    hosts = steer.get(b"host")
    if hosts is None:
        if head.http_version == "1.1":
            raise HTTPError(400, "A request needs exactly one Host header")
    elif len(hosts) > 1:
        raise HTTPError(400, "A request needs exactly one Host header")
    elif not valid_host(hosts[0]):
        raise HTTPError(400, "Malformed Host header")
    if len(steer) == 1 and hosts is not None:
        return  # the usual request: nothing else to decide
    codings = steer.get(b"transfer-encoding")
    if codings is not None:
        if head.http_version == "1.0":
            raise HTTPError(400, "Transfer-Encoding needs HTTP/1.1")
        if len(codings) > 1 or codings[0].lower() != b"chunked":
            if codings[-1].rpartition(b",")[2].strip(b" \t").lower() != b"chunked":
                # RFC 9112 section 6.3: without chunked last, where the body ends cannot be known.
                raise HTTPError(400, "Transfer-Encoding must end with chunked")
            raise HTTPError(501, "Only the chunked transfer coding is supported")
        head.chunked = True
    else:
        length = steer.get(b"content-length")
        if length is not None:  # llhttp has checked it: one value, digits, no overflow
            head.content_length = int(length[0])
            if head.content_length > max_body_size:
                raise HTTPError(413, f"Request body larger than {max_body_size} bytes")
    expect = steer.get(b"expect")
    head.expect_continue = expect is not None and expect[-1].lower() == b"100-continue" and head.http_version == "1.1"
    if upgrade:
        value = steer.get(b"upgrade")
        head.websocket = value is not None and value[-1].lower() == b"websocket" and head.method == "GET"
    forwarded = steer.get(b"x-forwarded-for")
    if forwarded is not None:
        head.forwarded_for = b",".join(forwarded)
    forwarded = steer.get(b"x-forwarded-port")
    if forwarded is not None:
        head.forwarded_port = b",".join(forwarded)
    forwarded = steer.get(b"x-forwarded-proto")
    if forwarded is not None:
        head.forwarded_proto = b",".join(forwarded)


def valid_host(value: bytes) -> bool:
    """True if ``value`` is a valid ``Host`` header value: ``uri-host [":" port]`` (RFC 9112 section 3.2)."""
    rest = value.translate(None, _REG_NAME)
    if not rest:
        return b"%" not in value or _HOST.fullmatch(value) is not None
    if rest == b":":
        port = value.rpartition(b":")[2]
        return (not port or port.isdigit()) and (b"%" not in value or _HOST.fullmatch(value) is not None)
    return _HOST.fullmatch(value) is not None
