"""``WSClient``: an :class:`~channels.test.HttpClient` that speaks WebSocket with JSON helpers."""

from __future__ import annotations

import json
from typing import Any

from ..asgi import DEFAULT_CHANNEL_LAYER
from .http import HttpClient


class WSClient(HttpClient):
    """A WebSocket test client.

    * ``order`` counts up from 0 at ``websocket.connect``, as a browser's
      frames would (``ordered=True`` also forbids setting it by hand);
    * ``text`` that is not a str is sent as JSON;
    * :meth:`receive` decodes JSON text frames;
    * consuming ``websocket.connect`` checks the handshake was accepted.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, ordered: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(alias, headers=headers)
        self.ordered = ordered
        self._pending: list[dict] = []

    def send(  # type: ignore[override]
        self, to: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> None:
        """Send to ``to``; ``text`` (a str, or anything JSON-encodable) becomes the frame's text.

        Raises:
            ValueError: ``ordered=True`` and ``content`` sets ``order`` itself.
        """
        content = dict(content or {})
        if self.ordered and "order" in content:
            raise ValueError(f"WSClient(ordered=True) numbers messages itself; do not pass order={content['order']!r}")
        if text is not None:
            content["text"] = text if isinstance(text, str) else json.dumps(text)
        super().send(to, content, path=path)

    def send_and_consume(self, channel: str, content: dict | None = None, text: Any = None,  # type: ignore[override]
                         path: str = "/", fail_on_none: bool = True, check_accept: bool = True) -> Any:
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
            received = self.receive(json=False)
            if not received or received.get("accept") is not True:
                raise AssertionError(f"Connection not accepted: the first reply was {received!r}")
            if len(received) > 1:  # an accept carrying a frame: keep the frame for receive()
                self._pending.append({k: v for k, v in received.items() if k != "accept"})
        return result

    def receive(self, json: bool = True) -> Any:  # type: ignore[override]
        """Return the next message on the reply channel (None if none).

        With ``json``, a message that is only a text frame is returned as
        its decoded JSON value (or the text itself when it is not JSON).
        """
        content = self._pending.pop(0) if self._pending else super().receive()
        if json and content and set(content) == {"text"} and isinstance(content["text"], str):
            return decode(content["text"])
        return content


def decode(text: str) -> Any:
    """Return ``text`` decoded from JSON, or ``text`` itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text
