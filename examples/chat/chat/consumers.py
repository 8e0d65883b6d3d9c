"""WebSocket consumers and the ``chat-messages`` consumer.

The flow, as in the getting-started guide's "Models" section:

1. ``websocket.connect`` on ``/chat/<room>/?nick=<name>`` -> :func:`ws_connect`
   remembers room and nickname in the channel session and joins the room's
   group.
2. ``websocket.receive`` -> :func:`ws_message` checks the frame and puts it on
   the ``chat-messages`` channel, so the socket's consumer returns at once.
3. ``chat-messages`` -> :func:`msg_consumer` saves the message with the ORM
   and broadcasts it to the room's group. Anything may send to
   ``chat-messages`` (a view, a bot, a cron job); every message is saved and
   shown alike.

Frames from the page are JSON: ``{"type": "message", "message": "hi"}`` or
``{"type": "nick", "nick": "ada"}``. Frames to the page are JSON too:
``{"type": "message", "id": .., "nick": .., "message": .., ...}`` or
``{"type": "error", "error": "..."}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels import Channel, Group
from channels.sessions import channel_session, enforce_ordering

from .models import MAX_MESSAGE_LENGTH, MAX_NICK_LENGTH, ChatMessage, Room, group_name

logger = logging.getLogger(__name__)


def clean_nick(raw: Any) -> str:
    """Return a usable nickname from what the client sent (``"anonymous"`` if nothing)."""
    nick = " ".join(str(raw or "").split())[:MAX_NICK_LENGTH]
    return nick or "anonymous"


def _query_nick(message) -> str:
    query = message.content.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return clean_nick(parse_qs(query).get("nick", [""])[0])


def _send_json(reply_channel, payload: dict[str, Any]) -> None:
    reply_channel.send({"text": json.dumps(payload)})


@enforce_ordering(slight=True)
@channel_session
def ws_connect(message, room: str) -> None:
    """Accept a socket into an existing room; refuse unknown rooms."""
    if not Room.objects.filter(slug=room).exists():
        logger.info("refused a socket for unknown room %r", room)
        message.reply_channel.send({"close": True})
        return
    message.channel_session["room"] = room
    message.channel_session["nick"] = _query_nick(message)
    Group(group_name(room)).add(message.reply_channel)
    message.reply_channel.send({"accept": True})


@enforce_ordering(slight=True)
@channel_session
def ws_message(message) -> None:
    """Check one frame from the page and queue it on ``chat-messages``."""
    room = message.channel_session.get("room")
    if room is None:
        # Slight ordering runs connect first, so this is a socket we refused.
        message.reply_channel.send({"close": True})
        return
    try:
        frame = json.loads(message.content.get("text") or "")
    except ValueError:
        _send_json(message.reply_channel, {"type": "error", "error": "frames must be JSON objects"})
        return
    if not isinstance(frame, dict):
        _send_json(message.reply_channel, {"type": "error", "error": "frames must be JSON objects"})
        return
    kind = frame.get("type")
    if kind == "nick":
        message.channel_session["nick"] = clean_nick(frame.get("nick"))
        return
    if kind != "message":
        _send_json(message.reply_channel, {"type": "error", "error": f"unknown frame type {kind!r}"})
        return
    text = str(frame.get("message") or "").strip()
    if not text:
        return
    if len(text) > MAX_MESSAGE_LENGTH:
        _send_json(message.reply_channel, {
            "type": "error", "error": f"messages are limited to {MAX_MESSAGE_LENGTH} characters"})
        return
    Channel("chat-messages").send({
        "room": room,
        "nick": message.channel_session.get("nick", "anonymous"),
        "message": text,
    })


@enforce_ordering(slight=True)
@channel_session
def ws_disconnect(message) -> None:
    """Leave the room's group."""
    room = message.channel_session.get("room")
    if room is not None:
        Group(group_name(room)).discard(message.reply_channel)


def ws_reject(message) -> None:
    """Refuse sockets opened on paths that are not a room."""
    message.reply_channel.send({"close": True})


def msg_consumer(message) -> None:
    """Save a message from ``chat-messages`` and broadcast it to its room."""
    room = Room.objects.filter(slug=message.content.get("room")).first()
    if room is None:
        logger.warning("dropped a message for unknown room %r", message.content.get("room"))
        return
    chat = ChatMessage.objects.create(
        room=room,
        nick=clean_nick(message.content.get("nick")),
        message=str(message.content.get("message", ""))[:MAX_MESSAGE_LENGTH],
    )
    Group(room.group_name).send({"text": json.dumps(chat.as_dict())})
