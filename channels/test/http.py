"""``HttpClient``: a test client with cookies, a session and a logged-in user.

It fills in what an interface server puts in a message: for
``http.request`` the method, path, query string, headers (with the session
cookie), body and addresses; for ``websocket.connect`` the same handshake
keys; for the other ``websocket.*`` channels the path and the ``order``.
It speaks WebSocket as well as HTTP (JSON ``text``, decoded replies, the
accept check on connect), as Channels 1.x's ``HttpClient`` did;
:class:`~channels.test.WSClient` adds strict ``order`` numbering.
"""

from __future__ import annotations

import copy
import json
from http.cookies import SimpleCookie
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from ..asgi import DEFAULT_CHANNEL_LAYER
from .base import Client

HANDSHAKE_CHANNELS = ("http.request", "websocket.connect")


def decode(text: str) -> Any:
    """Return ``text`` decoded from JSON, or ``text`` itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def as_text(value: str | bytes) -> str:
    """Return a header name or value as str (bytes are read as latin-1, as HTTP does)."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def header_pairs(headers: Any) -> Any:
    """Return ``headers`` as ``[[name, value], ...]`` bytes pairs, names lowercased.

    Accepts a dict (as Channels 1.x tests passed) or a list of pairs, of str
    or bytes; anything else is returned unchanged.
    """
    if isinstance(headers, dict):
        headers = list(headers.items())
    if not isinstance(headers, (list, tuple)):
        return headers
    return [[as_text(name).lower().encode("latin-1"), as_text(value).encode("latin-1")] for name, value in headers]


class HttpClient(Client):
    """A :class:`~channels.test.Client` that carries cookies, a session and a login.

    Args:
        alias: the channel layer to use.
        headers: extra headers for handshakes (``{"origin": "http://..."}``).
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, headers: dict[str, str] | None = None) -> None:
        super().__init__(alias)
        self._session: Any = None
        self._cookies: dict[str, str] = {}
        self._headers: dict[str, str] = {as_text(k).lower(): as_text(v) for k, v in (headers or {}).items()}
        self._pending: list[dict] = []
        self.order = 0

    # -- cookies, headers, session ----------------------------------------------

    def set_cookie(self, key: str | bytes, value: str | bytes) -> None:
        """Send cookie ``key=value`` with every handshake (str or bytes)."""
        self._cookies[as_text(key)] = as_text(value)

    def get_cookies(self) -> dict[str, str]:
        """Return the cookies sent with handshakes.

        With ``django.contrib.sessions`` installed they include the session
        cookie, naming :attr:`session`, as Channels 1.x's client did.
        """
        cookies = dict(self._cookies)
        if apps.is_installed("django.contrib.sessions"):
            cookies[settings.SESSION_COOKIE_NAME] = self.session.session_key
        return cookies

    def set_header(self, name: str | bytes, value: str | bytes) -> None:
        """Send header ``name`` with every handshake (str or bytes).

        Raises:
            ValueError: ``name`` is ``cookie``: use :meth:`set_cookie`.
        """
        name = as_text(name).lower()
        if name == "cookie":
            raise ValueError("Set cookies with set_cookie(), not set_header('cookie', ...)")
        self._headers[name] = as_text(value)

    @property
    def headers(self) -> list[list[bytes]]:
        """The handshake headers as an interface server sends them: ``[[name, value], ...]`` bytes."""
        headers = {"host": "testserver", **self._headers}
        cookies = self.get_cookies()
        if cookies:
            jar = SimpleCookie()
            for key, value in cookies.items():
                jar[key] = value
            headers["cookie"] = jar.output(header="", sep=";").strip()
        return [[name.encode("latin-1"), value.encode("latin-1")] for name, value in headers.items()]

    @property
    def session(self) -> Any:
        """This client's HTTP session (created and saved on first use); its key is the session cookie.

        Channels 1.x used the reply channel's channel session here; this is
        an ordinary session instead, because a channel session must never
        be usable as an HTTP session. What a test stores here (and
        :meth:`login` puts here) reaches ``http_session`` consumers, and
        ``channel_session_user_from_http`` carries the user over.

        Raises:
            RuntimeError: ``django.contrib.sessions`` is not installed.
        """
        if not apps.is_installed("django.contrib.sessions"):
            raise RuntimeError("Add django.contrib.sessions to INSTALLED_APPS to use the test client's session")
        if self._session is None:
            from importlib import import_module

            store = import_module(settings.SESSION_ENGINE).SessionStore()
            store.create()
            self._session = store
        return self._session

    def login(self, **credentials: Any) -> bool:
        """Authenticate with ``credentials`` and log the user in; return whether it worked."""
        user = auth.authenticate(**credentials)
        if user is None:
            return False
        self.force_login(user)
        return True

    def force_login(self, user: Any, backend: str | None = None) -> None:
        """Log ``user`` in to this client's session without checking credentials."""
        if backend is None:
            backend = settings.AUTHENTICATION_BACKENDS[0]
        request = HttpRequest()
        request.session = self.session
        auth.login(request, user, backend)
        self.session.save()

    def logout(self) -> None:
        """Log out: the session is flushed (a new, empty one is used from then on)."""
        if self._session is not None:
            request = HttpRequest()
            request.session = self._session
            request.user = auth.get_user(request)
            auth.logout(request)
            self._session = None

    # -- messages -----------------------------------------------------------

    def _fill(self, to: str, content: dict | None, path: str) -> dict[str, Any]:
        content = copy.deepcopy(content) if content else {}
        content.setdefault("reply_channel", self.reply_channel)
        path, _, query = path.partition("?")
        content.setdefault("path", path)
        if "headers" in content:
            content["headers"] = header_pairs(content["headers"])
        if to in HANDSHAKE_CHANNELS:
            content.setdefault("query_string", query.encode("latin-1"))
            content.setdefault("headers", self.headers)
            content.setdefault("root_path", "")
            content.setdefault("client", ["127.0.0.1", 50000])
            content.setdefault("server", ["127.0.0.1", 80])
        if to == "http.request":
            content.setdefault("method", "GET")
            content.setdefault("http_version", "1.1")
            content.setdefault("scheme", "http")
            content.setdefault("body", b"")
        elif to == "websocket.connect":
            content.setdefault("scheme", "ws")
        if to.startswith("websocket."):
            if to == "websocket.connect":
                self.order = 0
            if "order" not in content:
                content["order"] = self.order
            self.order = content["order"] + 1
        return content

    def send(  # type: ignore[override]
        self, to: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> None:
        """Send to ``to`` with the keys an interface server would add.

        ``path`` may carry ``?query``; ``text`` (or ``content["text"]``), a
        str or anything JSON-encodable, becomes a WebSocket frame's text:
        what is not a str is sent as JSON, as Channels 1.x's client did.
        """
        content = dict(content or {})
        if text is None:
            text = content.get("text")
        if text is not None:
            content["text"] = text if isinstance(text, str) else json.dumps(text)
        self.channel_layer.send(to, self._fill(to, content, path))

    def send_and_consume(  # type: ignore[override]
        self, channel: str, content: dict | None = None, text: Any = None, path: str = "/",
        fail_on_none: bool = True, check_accept: bool = True,
    ) -> Any:
        """:meth:`send` then :meth:`consume`."""
        self.send(channel, content, text=text, path=path)
        return self.consume(channel, fail_on_none=fail_on_none, check_accept=check_accept)

    def consume(  # type: ignore[override]
        self, channel: str, fail_on_none: bool = True, check_accept: bool = True
    ) -> Any:
        """Run the consumer for the next message on ``channel``.

        For ``websocket.connect`` with ``check_accept`` the first reply must be
        an accept (it is taken off the reply channel).

        Raises:
            AssertionError: as for :meth:`Client.consume`, or the handshake
                was not accepted.
        """
        result = super().consume(channel, fail_on_none=fail_on_none)
        if channel == "websocket.connect" and check_accept:
            received = self._next_reply()
            if not received or received.get("accept") is not True:
                raise AssertionError(f"Connection not accepted: the first reply was {received!r}")
            if len(received) > 1:  # an accept carrying a frame: keep the frame for receive()
                self._pending.append({k: v for k, v in received.items() if k != "accept"})
        return result

    def _next_reply(self) -> dict | None:
        return self._pending.pop(0) if self._pending else super().receive()

    def receive(self, json: bool = True) -> Any:  # type: ignore[override]
        """Return what the next message on the reply channel carries (None if there is none).

        As in Channels 1.x: a message with a ``text`` frame gives its text,
        decoded from JSON with ``json`` (the text itself when it is not
        JSON); any other message (an accept, a close, bytes, an HTTP
        response) is returned whole.
        """
        content = self._next_reply()
        if content and isinstance(content.get("text"), str):
            return decode(content["text"]) if json else content["text"]
        return content

    def request(self, method: str = "GET", path: str = "/", body: bytes = b"",
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Send an ``http.request``, run its consumer and return the whole response.

        Returns:
            ``{"status": int, "headers": [[name, value], ...], "content": bytes}``.

        Raises:
            AssertionError: the consumer sent no complete response.
        """
        content: dict[str, Any] = {"method": method.upper(), "body": body}
        if headers:
            extra = [[k.lower().encode("latin-1"), v.encode("latin-1")] for k, v in headers.items()]
            content["headers"] = self.headers + extra
        self.send_and_consume("http.request", content, path=path)
        first = self._next_reply()
        if first is None or "status" not in first:
            raise AssertionError(f"No response to {method} {path}: got {first!r}")
        response = {"status": first["status"], "headers": first.get("headers", []),
                    "content": first.get("content", b"")}
        more = first.get("more_content", False)
        while more:
            chunk = self._next_reply()
            if chunk is None:
                raise AssertionError(f"The response to {method} {path} stopped before its last chunk")
            response["content"] += chunk.get("content", b"")
            more = chunk.get("more_content", False)
        return response
