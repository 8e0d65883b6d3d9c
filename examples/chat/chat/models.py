"""Rooms and the messages said in them."""

from __future__ import annotations

from typing import Any

from django.db import models

MAX_MESSAGE_LENGTH = 2000
MAX_NICK_LENGTH = 32


class Room(models.Model):
    """A chat room, addressed by its slug (``/room/<slug>/``, socket ``/chat/<slug>/``)."""

    slug = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        """The name of the channel-layer group whose members are this room's sockets."""
        return group_name(self.slug)


def group_name(slug: str) -> str:
    """Return the group name for the room with ``slug``."""
    return f"chat-{slug}"


class ChatMessage(models.Model):
    """One line said in a room by a nickname."""

    room = models.ForeignKey(Room, related_name="messages", on_delete=models.CASCADE)
    nick = models.CharField(max_length=MAX_NICK_LENGTH)
    message = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.room.slug} <{self.nick}> {self.message[:40]}"

    def as_dict(self) -> dict[str, Any]:
        """Return the message as the JSON object the page receives."""
        return {
            "type": "message",
            "id": self.id,
            "room": self.room.slug,
            "nick": self.nick,
            "message": self.message,
            "created": self.created.isoformat(),
        }
