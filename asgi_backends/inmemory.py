"""An in-process channel layer: every sender and receiver in one Python process.

Use it for tests and for ``runserver`` (interface server and worker threads
in one process). It cannot cross processes: ``runworker`` refuses it.

Messages are stored msgpack-encoded, so what a receiver gets is a copy that
went through the same encoding as on every other layer, and the size limit
and type checks behave the same.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from typing import Any

from .base import BaseChannelLayer, Message, StatisticsCounter, non_local_name, unpack


class ChannelLayer(BaseChannelLayer):
    """Thread-safe in-memory channel layer.

    Args:
        blocking_timeout: longest time ``receive(block=True)`` waits before
            returning ``(None, None)``; workers loop on it, so it bounds how
            long they take to notice a shutdown request.
        **kwargs: ``expiry``, ``group_expiry``, ``capacity``,
            ``channel_capacity``, ``max_message_size`` as in
            :class:`~asgi_backends.base.BaseChannelLayer`.
    """

    extensions = ["groups", "flush", "statistics", "twisted", "asyncio"]
    cross_process = False

    def __init__(self, blocking_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocking_timeout = blocking_timeout
        self._cond = threading.Condition()
        # queue key (a name, or a "prefix!" for process-specific channels) ->
        # deque of (expires_at, full channel name, encoded message)
        self._queues: dict[str, deque[tuple[float, str, bytes]]] = {}
        # group -> {channel: membership expires_at}
        self._groups: dict[str, dict[str, float]] = {}
        self._stats = StatisticsCounter()
        self._channel_stats: dict[str, dict[str, int]] = {}

    # -- core -------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``.

        Raises:
            TypeError: bad channel name or message.
            ChannelFull: the channel holds ``capacity`` unread messages.
            MessageTooLarge: the encoded message is over the size limit.
        """
        self.valid_channel_name(channel)
        data = self.encode(message)
        with self._cond:
            if not self._put(channel, data):
                raise self.channel_full(channel)
            self._cond.notify_all()

    def _put(self, channel: str, data: bytes) -> bool:
        """Queue encoded data; return False if the channel is full. Lock held."""
        key = non_local_name(channel)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        now = time.monotonic()
        self._expire(key, queue, now)
        stats = self._channel_stats.setdefault(key, {"messages_count": 0, "channel_full_count": 0})
        if len(queue) >= self.get_capacity(channel):
            stats["channel_full_count"] += 1
            self._stats.full()
            return False
        queue.append((now + self.expiry, channel, data))
        stats["messages_count"] += 1
        self._stats.sent()
        return True

    def receive(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]:
        """Take the oldest message from one of ``channels``.

        The channels are tried in a random order so none starves. With
        ``block=True`` waits up to ``blocking_timeout`` for a send.

        Returns:
            ``(channel, message)``, or ``(None, None)`` if nothing arrived.
        """
        channels = self.valid_channel_names(channels, receive=True)
        if not channels:
            return None, None
        deadline = None
        with self._cond:
            while True:
                found = self._take(channels)
                if found is not None:
                    return found[0], unpack(found[1])
                if not block:
                    return None, None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.blocking_timeout
                if now >= deadline:
                    return None, None
                self._cond.wait(deadline - now)

    def _take(self, channels: list[str]) -> tuple[str, bytes] | None:
        if len(channels) > 1:
            channels = random.sample(channels, len(channels))
        now = time.monotonic()
        for key in channels:
            queue = self._queues.get(key)
            if not queue:
                continue
            self._expire(key, queue, now)
            if queue:
                _, name, data = queue.popleft()
                return name, data
        return None

    def _expire(self, key: str, queue: deque, now: float) -> None:
        """Drop expired messages; their channels leave every group. Lock held."""
        dropped = set()
        while queue and queue[0][0] <= now:
            dropped.add(queue.popleft()[1])
        if dropped:
            for members in self._groups.values():
                for name in dropped:
                    members.pop(name, None)

    # -- groups -------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, renewing its membership for ``group_expiry``."""
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        with self._cond:
            self._groups.setdefault(group, {})[channel] = time.monotonic() + self.group_expiry

    def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        self.valid_group_name(group)
        self.valid_channel_name(channel)
        with self._cond:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    def group_channels(self, group: str) -> list[str]:
        """Return the channels currently in ``group``."""
        self.valid_group_name(group)
        with self._cond:
            return list(self._live_members(group))

    def _live_members(self, group: str) -> dict[str, float]:
        members = self._groups.get(group)
        if not members:
            return {}
        now = time.monotonic()
        for name in [name for name, expires in members.items() if expires <= now]:
            del members[name]
        return members

    def send_group(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``.

        A member at capacity misses this message; ``ChannelFull`` is never raised.
        """
        self.valid_group_name(group)
        data = self.encode(message)
        with self._cond:
            members = self._live_members(group)
            now = time.monotonic()
            for channel in list(members):
                # Expire first: a member whose last message went unread has
                # left the group and must not get this one.
                queue = self._queues.get(non_local_name(channel))
                if queue:
                    self._expire(non_local_name(channel), queue, now)
                if channel in members:
                    self._put(channel, data)
            self._cond.notify_all()

    # -- flush and statistics ---------------------------------------------

    def flush(self) -> None:
        """Delete every message and group."""
        with self._cond:
            self._queues.clear()
            self._groups.clear()
            self._channel_stats.clear()

    def global_statistics(self) -> dict[str, int]:
        """Return ``messages_count`` and ``channel_full_count`` since start."""
        return {
            "messages_count": self._stats.messages_count,
            "channel_full_count": self._stats.channel_full_count,
        }

    def channel_statistics(self, channel: str) -> dict[str, float]:
        """Return counts for ``channel``: sent, pending, full, and oldest pending age (s)."""
        self.valid_channel_name(channel)
        key = non_local_name(channel)
        with self._cond:
            queue = self._queues.get(key) or deque()
            now = time.monotonic()
            self._expire(key, queue, now)
            stats = self._channel_stats.get(key, {"messages_count": 0, "channel_full_count": 0})
            max_age = (now - (queue[0][0] - self.expiry)) if queue else 0.0
            return {
                "messages_count": stats["messages_count"],
                "messages_pending": len(queue),
                "messages_max_age": max_age,
                "channel_full_count": stats["channel_full_count"],
            }
