"""Turning a response message's status and headers into bytes on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = ["ResponseError", "ResponseHead", "build_head", "error_response"]

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_NO_BODY = frozenset({204, 304})
# RFC 9110 token characters: a header name has only these (deleting them leaves nothing).
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Header names already found to be tokens, with their lowercase form: an application sends the
# same few names again and again, so each is checked once (bounded, against a flood of new ones).
_CHECKED_NAMES: dict[bytes, bytes] = {}
_CHECKED_MOST = 1024


class ResponseError(Exception):
    """The application sent a response message the server cannot use."""


@dataclass(slots=True)
class ResponseHead:
    """How the body of a response must be framed, decided from its head.

    Attributes:
        data: the encoded status line and headers, ending in the blank line.
        chunked: body chunks need chunked transfer-encoding framing.
        body_allowed: the body is written at all (false for HEAD, 204, 304).
        keep_alive: the connection may serve another request afterwards.
    """

    data: bytes
    chunked: bool
    body_allowed: bool
    keep_alive: bool


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ResponseError(f"response {what} {value!r} is not latin-1 text") from None
    raise ResponseError(f"response {what} must be bytes or str, not {type(value).__name__} ({value!r})")


def build_head(
    message: dict[str, Any],
    http_version: str,
    head_only: bool,
    keep_alive: bool,
    server_name: bytes,
) -> ResponseHead:
    """Encode the head of the first response message.

    Adds ``Content-Length`` when the whole body is in this message,
    chunked framing when more follows without a length (HTTP/1.1), and
    ``Connection: close`` when the connection will close.

    Raises:
        ResponseError: the status or a header is malformed: a header name
            that is not a token, a value with CR, LF or NUL (which would let
            the application split the response or smuggle headers).
    """
    status = message.get("status")
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ResponseError(f"response status must be an int from 100 to 999, not {status!r}")
    content = message.get("content", b"")
    more = message.get("more_content", False)
    lines = [b"HTTP/%s %d %s" % (http_version.encode(), status, _REASONS.get(status, b"Unknown"))]
    has_length = has_server = False
    for pair in message.get("headers", ()):
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise ResponseError(f"response header must be a [name, value] pair, not {pair!r}") from None
        if type(name) is not bytes:
            name = _as_bytes(name, "header name")
        if type(value) is not bytes:
            value = _as_bytes(value, "header value")
        lower = _CHECKED_NAMES.get(name)
        if lower is None:
            if not name or name.translate(None, _TOKEN):
                raise ResponseError(f"response header name {name!r} is not a token (a line break, colon, space, "
                                    f"NUL or other character a header name cannot have)")
            lower = name.lower()
            if len(_CHECKED_NAMES) < _CHECKED_MOST:
                _CHECKED_NAMES[name] = lower
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ResponseError(f"response header {name!r} has a line break or NUL in its value {value!r}")
        if lower == b"content-length":
            has_length = True
        elif lower == b"transfer-encoding":
            # The server frames the body itself; an application's value would double it.
            continue
        elif lower == b"connection":
            if b"close" in value.lower():
                keep_alive = False
            continue
        elif lower == b"server":
            has_server = True
        lines.append(name + b": " + value)
    if not has_server and server_name:
        lines.append(b"Server: " + server_name)
    body_allowed = not head_only and status not in _NO_BODY and status >= 200
    chunked = False
    if not has_length and status not in _NO_BODY and status >= 200:
        if not more:
            lines.append(b"Content-Length: %d" % len(content))
        elif http_version == "1.1":
            if not head_only:
                lines.append(b"Transfer-Encoding: chunked")
                chunked = True
        else:
            # HTTP/1.0 without a length: the end of the body is the end of the connection.
            keep_alive = False
    if not keep_alive:
        lines.append(b"Connection: close")
    elif http_version == "1.0":
        lines.append(b"Connection: keep-alive")
    lines.append(b"\r\n")
    return ResponseHead(b"\r\n".join(lines), chunked, body_allowed, keep_alive)


def error_response(status: int, text: str, head_only: bool = False) -> bytes:
    """Return a complete plain-text error response that closes the connection."""
    body = f"{status} {_REASONS.get(status, b'Error').decode()}: {text}\n".encode()
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status, _REASONS.get(status, b"Error"), len(body))
    )
    return head if head_only else head + body
