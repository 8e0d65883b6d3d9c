"""Apache-style access log lines for HTTP requests and WebSocket events.

A request target's ``session_key`` parameter (what ``http_session`` reads
a session from when a client cannot send cookies) is a credential: its
value is logged as ``REDACTED``.
"""

from __future__ import annotations

import re
import time
from typing import IO, Any
from urllib.parse import unquote_plus

__all__ = ["AccessLogger", "redact"]


def redact(target: str) -> str:
    """Return ``target`` with the value of every ``session_key`` query parameter replaced by ``REDACTED``.

    A parameter counts when its name reads ``session_key`` once
    percent-decoded, as Django's ``QueryDict`` would read it.
    """
    path, sep, query = target.partition("?")
    if not sep or ("session" not in query and "%" not in query):
        return target
    query, hash_, fragment = query.partition("#")
    params = re.split(r"([&;])", query)
    for index in range(0, len(params), 2):
        name, equals, _ = params[index].partition("=")
        if equals and unquote_plus(name) == "session_key":
            params[index] = name + "=REDACTED"
    return path + sep + "".join(params) + hash_ + fragment


def _host(client: Any) -> str:
    if client:
        return f"{client[0]}:{client[1]}" if len(client) > 1 and client[1] else str(client[0])
    return "-"


class AccessLogger:
    """Writes one line per finished request or WebSocket event to a text stream.

    Lines look like Apache's common log format::

        127.0.0.1:50312 - - [21/Nov/2026:05:30:00] "GET /path?x=1 HTTP/1.1" 200 2
        127.0.0.1:50314 - - [21/Nov/2026:05:30:01] "WSCONNECT /chat/" - -
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._stamp_second = -1
        self._stamp = ""

    def _date(self) -> str:
        # Formatting a date per request is measurable under load; do it once a second.
        now = int(time.time())
        if now != self._stamp_second:
            self._stamp_second = now
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(now))
        return self._stamp

    def _write(self, line: str) -> None:
        self.stream.write(line)
        self.stream.flush()

    def http(self, client: Any, method: str, target: bytes, version: str, status: int, length: int) -> None:
        """Log a finished (or failed) HTTP request."""
        request = f"{method} {redact(target.decode('ascii', 'replace'))} HTTP/{version}"
        self._write(f'{_host(client)} - - [{self._date()}] "{request}" {status} {length}\n')

    def websocket(self, action: str, client: Any, path: str) -> None:
        """Log a WebSocket event: WSCONNECTING, WSCONNECT, WSREJECT or WSDISCONNECT."""
        self._write(f'{_host(client)} - - [{self._date()}] "{action} {path}" - -\n')
