"""``WSClient``: the WebSocket test client (an :class:`~channels.test.HttpClient` with order checks)."""

from __future__ import annotations

from typing import Any

from ..asgi import DEFAULT_CHANNEL_LAYER
from .http import HttpClient, decode


class WSClient(HttpClient):
    """A WebSocket test client.

    * ``order`` counts up from 0 at ``websocket.connect``, as a browser's
      frames would; ``ordered=True`` forbids setting it by hand;
    * ``text`` that is not a str is sent as JSON;
    * :meth:`receive` decodes JSON text frames;
    * consuming ``websocket.connect`` checks the handshake was accepted.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, ordered: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(alias, headers=headers)
        self.ordered = ordered

    def send(  # type: ignore[override]
        self, to: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> None:
        """Send to ``to`` (see :meth:`HttpClient.send`).

        Raises:
            ValueError: ``ordered=True`` and ``content`` sets ``order`` itself.
        """
        if self.ordered and content and "order" in content:
            raise ValueError(f"WSClient(ordered=True) numbers messages itself; do not pass order={content['order']!r}")
        super().send(to, content, text=text, path=path)


__all__ = ["WSClient", "decode"]
