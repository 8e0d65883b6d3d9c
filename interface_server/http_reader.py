"""Reading HTTP/1.x requests off a byte stream, strictly: llhttp, through ``httptools``.

The framing -- request line, header syntax, ``Content-Length``, chunked
bodies, and the refusals RFC 9112 requires (non-token field names, CTLs in
values, bare CR or LF, obs-fold, bad chunk sizes, ``Transfer-Encoding``
with ``Content-Length``) -- is llhttp's, the parser Node.js and uvicorn
use; :mod:`interface_server.http_parse` adds the rules llhttp leaves to
us, and this module the size limits, dropping header names with ``_``, and
pipelining.

Every byte has one reading or the request is refused: a
:class:`RequestReader` either yields requests or ends in an
:class:`~interface_server.http_parse.HTTPError` (400, 413, 414, 431, 501 or
505), after which it reads nothing more. Kept free of Twisted so it can be
tested, fuzzed and profiled alone.
"""

from __future__ import annotations

import collections

import httptools

from .http_parse import _VERSIONS, STEERING, HTTPError, ParsedRequest, RequestHead, check_head, split_target

__all__ = ["PIPELINE_OVERHEAD", "RequestReader"]

PIPELINE_OVERHEAD = 512
"""Bytes a pipelined request waiting behind the one being served counts for, besides its head and body."""


def _parser_status(exc: Exception) -> HTTPError:
    """Map an llhttp error to the status the client gets."""
    message = str(exc)
    if "HTTP version" in message:
        return HTTPError(505, "HTTP version not supported")
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return HTTPError(400, "Malformed request method")
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return HTTPError(400, "Malformed request target")
    return HTTPError(400, message or "Malformed request")


class RequestReader:
    """Turns the bytes of one connection into :class:`ParsedRequest` objects, in order.

    :meth:`feed` never raises for bad input: it appends what it read to
    :attr:`requests` (oldest first; the connection pops the one it has
    finished with :meth:`pop`) and records a refusal in the request it
    concerns (or in a head-less request after the others). Once refused,
    or once a WebSocket upgrade head has been read, it parses nothing more.

    Args:
        max_header_size: largest request head in bytes (431 beyond it; 414
            when the request line alone is longer); also the most bytes of
            pipelined requests read ahead of the one being served.
        max_body_size: largest request body (413 beyond it).

    Attributes:
        requests: the requests read, oldest first.
        upgrade: after a WebSocket upgrade request, the bytes that followed
            its head (the WebSocket's, not HTTP's); otherwise ``None``.
        truncated: pipelined requests beyond ``max_header_size`` bytes of
            them were left unread; the connection should close after
            answering the ones in :attr:`requests`.
        failed: a refusal has been recorded.
        in_head: part of a request head has been read, not all of it.
    """

    __slots__ = ("max_header_size", "max_body_size", "requests", "upgrade", "truncated", "failed", "in_head",
                 "_stopped", "_parser", "_current", "_continuing", "_queued", "_silent", "_moved", "_trailers",
                 "_feeding", "_completed", "_head_fed", "_chunk_open",
                 "_url", "_headers", "_size", "_steer")

    def __init__(self, max_header_size: int, max_body_size: int) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.requests: collections.deque[ParsedRequest] = collections.deque()
        self.upgrade: bytes | None = None
        self.truncated = False
        self.failed = False
        self.in_head = False
        self._stopped = False  # any of the three above: nothing more is parsed
        self._parser = httptools.HttpRequestParser(self)
        self._current: ParsedRequest | None = None
        self._continuing: ParsedRequest | None = None
        self._queued = 0  # bytes the requests after the first one count for
        # Bytes fed since a callback last delivered something: what llhttp (or
        # httptools) is holding for us, such as a header value still arriving.
        self._silent = 0
        self._moved = False
        self._trailers = 0
        # Bytes of the head still arriving, counted from the feed it began in when it began
        # that feed (then they are exact), else from the next one.
        self._feeding = 0
        self._completed = False
        self._head_fed = 0
        self._chunk_open = False  # after a chunk's size line: its data, or (size 0) the trailers, follow
        self._url = bytearray()
        self._headers: list[list[bytes]] = []
        self._size = 0
        self._steer: dict[bytes, list[bytes]] = {}

    # -- feeding -----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Read ``data``, the next bytes of the stream (never raises for bad input)."""
        if self._stopped:
            if self.upgrade is not None:
                self.upgrade += data
            return
        self._moved = self._completed = False
        self._feeding = len(data)
        if self.in_head:
            self._head_fed += len(data)
        mark = self._size
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data, exc.args[0])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Truncate):
                self._truncate()
            elif isinstance(cause, HTTPError):
                self._refuse(cause)
            else:
                raise  # a bug in a callback, not bad input
        except httptools.HttpParserError as exc:
            self._refuse(_parser_status(exc))
        else:
            # Bound what is held for a field still arriving now, not when it ends (it may never).
            # Only a head or trailers can be held; chunk extensions are skipped, not kept.
            if self._moved or self._size != mark or not (self.in_head or self._chunk_open):
                self._silent = 0
            else:
                self._silent += len(data)
            if self._silent > self.max_header_size or (
                    self.in_head and max(self._size, self._head_fed) > self.max_header_size):
                self._refuse(HTTPError(431, "Request header fields too large"))

    def pop(self) -> ParsedRequest:
        """Remove and return the oldest request (the connection is done with it)."""
        request = self.requests.popleft()
        if self.requests:
            self._queued -= _cost(self.requests[0])
        return request

    def _truncate(self) -> None:
        """Stop reading: the pipelined requests read so far are all this connection will answer."""
        self.truncated = self._stopped = True
        self.in_head = False
        current = self._current
        if current is not None and not current.complete and current is not self.requests[0]:
            self.requests.pop()  # half read: the client retries it on a new connection
        self._current = None

    def _refuse(self, error: HTTPError) -> None:
        self.failed = self._stopped = True
        self.in_head = False
        current = self._current
        if current is not None and not current.complete:
            current.error = error
        else:
            self.requests.append(ParsedRequest(None, error))

    def _upgraded(self, data: bytes, offset: int) -> None:
        """llhttp stopped after the head of a request with ``Connection: upgrade``."""
        request = self.requests[-1]
        head = request.head
        rest = data[offset:]
        if head.websocket:
            self.upgrade = rest
            self._stopped = True
            return
        # Not an upgrade we make: the request is an ordinary one (RFC 9110 section 7.8), so read on
        # with a fresh parser -- first its body, which llhttp left unread, then what follows.
        self._parser = httptools.HttpRequestParser(self)
        if head.chunked or head.content_length:
            request.complete = False
            self._continuing = request
            framing = b"Transfer-Encoding: chunked" if head.chunked else b"Content-Length: %d" % head.content_length
            self._parser.feed_data(b"PUT / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
        if rest:
            self.feed(rest)

    # -- llhttp callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._moved = True
        self._trailers = 0
        if self._continuing is None:
            self.in_head = True
            self._head_fed = 0 if self._completed else self._feeding
            self._url = bytearray()
            self._headers = []
            self._size = 16  # method, spaces, version and line ends, near enough
            self._steer = {}

    def on_url(self, url: bytes) -> None:
        if self._continuing is None:
            self._url += url
            self._size += len(url)
            if self._size > self.max_header_size:
                raise HTTPError(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            if self._continuing is None:
                # A trailer field (after a chunked body): bounded like a head, and not passed on.
                self._moved = True
                self._trailers += len(name) + len(value) + 4
                if self._trailers > self.max_header_size:
                    raise HTTPError(431, "Request trailer fields too large")
            return
        self._size += len(name) + len(value) + 4
        name = name.lower()
        if b"_" in name:
            # Django's META spells "-" as "_": X_Forwarded_For must not pose as X-Forwarded-For.
            return
        value = value.rstrip(b" \t")  # llhttp strips the leading whitespace only
        self._headers.append([name, value])
        if name in STEERING:
            steer = self._steer
            if name in steer:
                steer[name].append(value)
            else:
                steer[name] = [value]

    def on_headers_complete(self) -> None:
        self._moved = True
        continuing = self._continuing
        if continuing is not None:
            self._continuing = None
            self._current = continuing
            return
        self.in_head = False
        parser = self._parser
        size = self._size
        if size > self.max_header_size:
            raise HTTPError(431, "Request header fields too large")
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            raise HTTPError(505, "HTTP version not supported")
        target = bytes(self._url)
        path, query = split_target(target)
        head = RequestHead(parser.get_method().decode("ascii"), target, path, query, version, self._headers,
                           None, False, parser.should_keep_alive(), False, False, None, None, None, size)
        request = ParsedRequest(head)
        if self.requests:
            self._queued += _cost(request)
            if self._queued > self.max_header_size:
                raise _Truncate()
        self.requests.append(request)
        self._current = request
        steer = self._steer
        check_head(head, steer, b"upgrade" in steer and parser.should_upgrade(), self.max_body_size)

    def on_body(self, data: bytes) -> None:
        self._moved = True
        request = self._current
        request.body_size += len(data)
        if request.body_size > self.max_body_size:
            raise HTTPError(413, f"Request body larger than {self.max_body_size} bytes")
        request.body += data
        if request is not self.requests[0]:
            self._queued += len(data)
            if self._queued > self.max_header_size:
                raise _Truncate()

    def on_chunk_header(self) -> None:
        self._chunk_open = True

    def on_chunk_complete(self) -> None:
        self._chunk_open = False

    def on_message_complete(self) -> None:
        self._moved = self._completed = True
        request = self._current
        if request is not None:
            request.complete = True
        self._current = None


class _Truncate(Exception):
    """Raised in a callback to stop reading pipelined requests past the budget."""


def _cost(request: ParsedRequest) -> int:
    """What a request waiting behind the one being served counts for (a refusal: nothing)."""
    if request.head is None:
        return 0
    return request.head.size + request.body_size + PIPELINE_OVERHEAD
