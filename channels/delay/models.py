"""``DelayedMessage``: a message waiting in the database for its due time."""

from __future__ import annotations

import datetime
import math
from typing import Any

from django.db import models
from django.utils import timezone

from asgi_backends.base import ChannelLayer, pack, unpack

#: the longest delay accepted: ten years, in milliseconds
MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000


class InvalidDelayedMessage(ValueError):
    """A message on ``asgi.delay`` is malformed; it is logged and dropped."""


class DelayedMessageQuerySet(models.QuerySet):
    """Queries on pending messages."""

    def due(self, now: datetime.datetime | None = None) -> DelayedMessageQuerySet:
        """Messages whose due time has come, oldest first."""
        return self.filter(due_date__lte=now or timezone.now()).order_by("due_date", "id")

    def next_due_date(self) -> datetime.datetime | None:
        """The earliest due time of all pending messages, or None when there are none."""
        return self.aggregate(first=models.Min("due_date"))["first"]


class DelayedMessage(models.Model):
    """One pending message: ``content`` (msgpack, so bytes stay bytes) for ``channel_name`` at ``due_date``."""

    due_date = models.DateTimeField(db_index=True)
    channel_name = models.CharField(max_length=200)
    content = models.BinaryField()
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    objects = DelayedMessageQuerySet.as_manager()

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return f"message for {self.channel_name} due {self.due_date.isoformat()}"

    @classmethod
    def from_request(cls, request: Any, channel_layer: ChannelLayer, now: datetime.datetime | None = None) -> DelayedMessage:
        """Build (unsaved) the row for an ``asgi.delay`` message.

        Raises:
            InvalidDelayedMessage: a key is missing or has the wrong type, the
                delay is negative or too long, or the channel name is invalid.
        """
        if not isinstance(request, dict):
            raise InvalidDelayedMessage(f"an asgi.delay message must be a dict, not {request!r:.100}")
        missing = [key for key in ("channel", "content", "delay") if key not in request]
        if missing:
            raise InvalidDelayedMessage(f"asgi.delay message lacks {missing}: it needs channel, content and delay (ms)")
        channel, content, delay = request["channel"], request["content"], request["delay"]
        if not isinstance(channel, str):
            raise InvalidDelayedMessage(f"'channel' must be a channel name (str), not {channel!r:.100}")
        try:
            channel_layer.valid_channel_name(channel)
        except TypeError as exc:
            raise InvalidDelayedMessage(f"'channel' {channel!r:.100} is not a valid channel name: {exc}") from None
        if not isinstance(content, dict):
            raise InvalidDelayedMessage(f"'content' must be a dict (the message to send), not {content!r:.100}")
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay):
            raise InvalidDelayedMessage(f"'delay' must be a number of milliseconds, not {delay!r:.100}")
        if not 0 <= delay <= MAX_DELAY_MS:
            raise InvalidDelayedMessage(f"'delay' must be between 0 and {MAX_DELAY_MS} ms, not {delay!r}")
        due = (now or timezone.now()) + datetime.timedelta(milliseconds=delay)
        return cls(due_date=due, channel_name=channel, content=pack(content))

    def message(self) -> dict:
        """Return the message to send."""
        return unpack(bytes(self.content))
