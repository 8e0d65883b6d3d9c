"""Helpers for the channels unit tests."""

from __future__ import annotations

from typing import Any

from channels.message import Message
from channels.worker import Worker


def message(layer: Any, channel: str, **content: Any) -> Message:
    """Build a Message as a worker would."""
    return Message(content, channel, layer)


def dispatch(layer: Any, channel: str, content: dict) -> None:
    """Run one message through routing and the consumer exactly as a worker thread does."""
    Worker(layer, signal_handlers=False).handle(channel, content)


def drain(layer: Any, channel: str) -> list[dict]:
    """Return every message waiting on ``channel`` (a name or a ``prefix!``)."""
    found = []
    while True:
        name, content = layer.receive([channel], block=False)
        if name is None:
            return found
        found.append(content)
