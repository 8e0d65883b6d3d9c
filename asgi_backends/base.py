"""The channel layer contract shared by every backend.

A channel layer moves *messages* (dicts of msgpack-able values) between
processes over named *channels*. This module holds what every backend does
the same way: name validation, message validation and encoding, capacity
lookup, fresh channel names, and the default ``receive_twisted`` /
``receive_async`` built on a blocking ``receive``.

Channel names are ASCII letters, digits, ``.``, ``-`` and ``_``, shorter
than :data:`MAX_NAME_LENGTH`, optionally followed by one type character and
a suffix:

* ``name?suffix`` -- a *single-reader* channel (a request body, say). The
  suffix is not optional: ``name?`` alone is only a pattern for
  ``new_channel``, and ``send``, ``receive`` and the group operations refuse
  it with ``TypeError``, as asgiref 1.x did.
* ``name!suffix`` -- a *process-specific* channel: the owning process
  receives on the prefix ``name!`` and gets the messages of every channel
  starting with it, each reported under its full name.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import threading
from typing import Any, Iterable, Pattern, Protocol, runtime_checkable

import msgpack

from .exceptions import ChannelFull, MessageTooLarge

Message = dict
"""A message: a dict of bytes, str, int, float, bool, None, lists and dicts."""

MAX_NAME_LENGTH = 100
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_PROCESS_CAPACITY = 10000

_CHANNEL_NAME = re.compile(r"^[a-zA-Z\d\-_.]+([?!][a-zA-Z\d\-_.]*)?$")
_GROUP_NAME = re.compile(r"^[a-zA-Z\d\-_.]+$")
# Every rule of valid_channel_name in one regex each, for the common case (a valid name).
_SEND_NAME = re.compile(r"[a-zA-Z\d\-_.]+(?:\?[a-zA-Z\d\-_.]+|![a-zA-Z\d\-_.]*)?")
_RECEIVE_NAME = re.compile(r"[a-zA-Z\d\-_.]+(?:\?[a-zA-Z\d\-_.]+|!)?")


def pack(message: Message) -> bytes:
    """Encode a message with msgpack; bytes and str stay distinct."""
    return msgpack.packb(message, use_bin_type=True)


def unpack(data: bytes) -> Message:
    """Decode what :func:`pack` produced."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def loggable_name(name: object) -> str:
    """Return a channel name fit for a log line: a reply channel's secret suffix cut short.

    ``websocket.send!3f2a9c...`` becomes ``websocket.send!3f2a…``: a
    process-specific or single-reader name is a capability (whoever knows it
    can write to that client), so logs never carry it whole. Plain names
    are returned unchanged; anything else is shown with ``repr``.
    """
    if not isinstance(name, str):
        return repr(name)
    cut = max(name.find("!"), name.find("?"))
    if cut < 0 or len(name) - cut <= 5:
        return name
    return name[: cut + 5] + "\u2026"


def non_local_name(name: str) -> str:
    """Return the part of a process-specific name that routes it: ``a!xyz`` → ``a!``.

    Other names are returned unchanged.
    """
    bang = name.find("!")
    return name if bang < 0 else name[: bang + 1]


@runtime_checkable
class ChannelLayer(Protocol):
    """What every package may rely on from a channel layer.

    The interface server, the worker and the Django app type against this,
    never against a backend class. :class:`BaseChannelLayer` implements it;
    every shipped layer inherits from that.

    Attributes:
        extensions: the optional extensions the layer supports
            (``"groups"``, ``"flush"``, ``"statistics"``, ``"twisted"``,
            ``"asyncio"``).
        cross_process: False for a layer whose messages never leave the
            process (the in-memory one): a separate worker would never see them.
        expiry: seconds an unread message lives.
        group_expiry: seconds a group membership lives after its last ``group_add``.
        max_message_size: the largest encoded message ``send`` accepts, in bytes.
        ChannelFull: the exception a send over capacity raises.
        MessageTooLarge: the exception a send over the size limit raises.
    """

    extensions: list[str]
    cross_process: bool
    expiry: float
    group_expiry: float
    max_message_size: int
    ChannelFull: type[ChannelFull]
    MessageTooLarge: type[MessageTooLarge]

    def send(self, channel: str, message: Message) -> None: ...

    def receive(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]: ...

    def receive_many(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]: ...

    def new_channel(self, pattern: str) -> str: ...

    def send_batch(self, items: Iterable[tuple[str, Message]]) -> list[Exception | None]: ...

    def receive_batch(self, channels: list[str], max_messages: int,
                      block: bool = False) -> list[tuple[str, Message]]: ...

    def send_batch_and_receive(self, items: Iterable[tuple[str, Message]], channels: list[str],
                               max_messages: int) -> tuple[list[Exception | None], list[tuple[str, Message]]]: ...

    def group_add(self, group: str, channel: str) -> None: ...

    def group_discard(self, group: str, channel: str) -> None: ...

    def group_channels(self, group: str) -> list[str]: ...

    def send_group(self, group: str, message: Message) -> None: ...

    def flush(self) -> None: ...

    def receive_twisted(self, channels: list[str]) -> Any: ...

    async def receive_async(self, channels: list[str]) -> tuple[str | None, Message | None]: ...


#: The names :class:`ChannelLayer` declares, for wrappers that pass them through.
CHANNEL_LAYER_MEMBERS: tuple[str, ...] = tuple(sorted(
    {*ChannelLayer.__annotations__}
    | {name for name, value in vars(ChannelLayer).items() if callable(value) and not name.startswith("_")}
))


class ReactorLayerClient(Protocol):
    """A layer's non-blocking client for a Twisted reactor: what an interface server sends and receives through.

    Every method is called in the reactor thread and returns at once; the
    results come as Deferreds (see
    :class:`~asgi_backends.redis.reactor_client.ReactorRedisClient`).
    """

    def send_batch(self, items: list[tuple[str, Message]]) -> Any:
        """A Deferred firing with one result per item: None, or the exception it met (it never fails)."""

    def receive_replies(self, prefix: str, max_messages: int) -> Any:
        """A Deferred firing with the messages on a process-specific prefix (empty after the layer's wait)."""

    def close(self) -> None:
        """Close the client's connections."""


@runtime_checkable
class ReactorClientSource(Protocol):
    """A layer that can hand out a :class:`ReactorLayerClient` (the Redis layer, for plain hosts)."""

    def reactor_client(self, reactor: Any) -> ReactorLayerClient | None:
        """A client running in ``reactor``, or None when this layer's configuration needs the blocking methods."""


class BaseChannelLayer:
    """Shared behaviour of all channel layers.

    Subclasses implement ``send``, ``receive``, ``new_channel`` and the
    extensions they list in :attr:`extensions`.

    Args:
        expiry: seconds an unread message lives.
        group_expiry: seconds a group membership lives after its last
            ``group_add``.
        capacity: default number of unread messages a channel may hold.
        channel_capacity: overrides of ``capacity``, keyed by a channel name,
            a glob pattern (``"http.request"``, ``"websocket.*"``) or a
            compiled regular expression. The first match wins.
        max_message_size: largest encoded message accepted by ``send``.
        process_capacity: default capacity of each process-specific prefix
            (``name!``). All of an interface server's clients share one
            prefix, so a broadcast to a group of 500 sockets on one server
            puts 500 messages on it at once; a per-channel default of 100
            would drop most of them. ``channel_capacity`` overrides still
            win over this default.
    """

    extensions: list[str] = []
    #: False for layers whose messages never leave the process (see :class:`ChannelLayer`).
    cross_process: bool = True

    ChannelFull = ChannelFull
    MessageTooLarge = MessageTooLarge

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict[str | Pattern[str], int] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        process_capacity: int = DEFAULT_PROCESS_CAPACITY,
    ) -> None:
        if expiry <= 0:
            raise ValueError(f"expiry must be a positive number of seconds, not {expiry!r}")
        if group_expiry <= 0:
            raise ValueError(f"group_expiry must be a positive number of seconds, not {group_expiry!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, not {capacity!r}")
        if not isinstance(process_capacity, int) or process_capacity < 1:
            raise ValueError(f"process_capacity must be a positive integer, not {process_capacity!r}")
        self.process_capacity = process_capacity
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.max_message_size = max_message_size
        self.channel_capacity = self._compile_capacities(channel_capacity or {})
        self._capacity_cache: dict[str, int] = {}

    # -- validation -------------------------------------------------------

    @staticmethod
    def _compile_capacities(
        overrides: dict[str | Pattern[str], int],
    ) -> list[tuple[Pattern[str], int]]:
        compiled = []
        for pattern, value in overrides.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"channel_capacity[{pattern!r}] must be a positive integer, not {value!r}")
            if isinstance(pattern, str):
                pattern = re.compile(fnmatch.translate(pattern))
            elif not isinstance(pattern, re.Pattern):
                raise TypeError(
                    f"channel_capacity keys must be names, glob patterns or compiled regexes, not {pattern!r}"
                )
            compiled.append((pattern, value))
        return compiled

    def valid_channel_name(self, name: Any, receive: bool = False) -> bool:
        """Check a channel name; return True or raise ``TypeError`` saying why.

        With ``receive=True``, process-specific names must be given as their
        prefix (ending in ``!``), since that is what a process listens on.
        A name ending in ``?`` is refused either way: it is a ``new_channel``
        pattern, not a channel (asgiref 1.x refused it too).
        """
        if type(name) is str and len(name) < MAX_NAME_LENGTH and \
                (_RECEIVE_NAME if receive else _SEND_NAME).fullmatch(name) is not None:
            return True  # valid: one regex; the checks below say what is wrong with the rest
        if not isinstance(name, str):
            raise TypeError(f"Channel name must be a str, not {type(name).__name__} ({name!r})")
        if len(name) >= MAX_NAME_LENGTH:
            raise TypeError(f"Channel name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME_LENGTH - 1}")
        if not _CHANNEL_NAME.match(name):
            raise TypeError(
                f"Channel name {name!r} is invalid: use ASCII letters, digits, '.', '-', '_' "
                "and at most one '?' or '!'"
            )
        if name.endswith("?"):
            raise TypeError(
                f"Channel name {name!r} ends in '?': a single-reader channel needs a suffix; "
                f"make one with new_channel({name!r})"
            )
        if receive and "!" in name and not name.endswith("!"):
            raise TypeError(
                f"Cannot receive on {name!r}: receive on its process-specific prefix {non_local_name(name)!r} instead"
            )
        return True

    def valid_group_name(self, name: Any) -> bool:
        """Check a group name; return True or raise ``TypeError`` saying why."""
        if not isinstance(name, str):
            raise TypeError(f"Group name must be a str, not {type(name).__name__} ({name!r})")
        if len(name) >= MAX_NAME_LENGTH:
            raise TypeError(f"Group name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME_LENGTH - 1}")
        if not _GROUP_NAME.match(name):
            raise TypeError(f"Group name {name!r} is invalid: use ASCII letters, digits, '.', '-' and '_'")
        return True

    def valid_channel_names(self, names: Any, receive: bool = False) -> list[str]:
        """Check a list of channel names for ``receive``; return it as a list."""
        # A list is what every caller passes: skip the (slow) ABC check for it.
        if type(names) is not list and (isinstance(names, (str, bytes)) or not isinstance(names, Iterable)):
            raise TypeError(f"channels must be a list of channel names, not {names!r}")
        names = list(names)
        for name in names:
            self.valid_channel_name(name, receive=receive)
        return names

    def encode(self, message: Any) -> bytes:
        """Validate and encode a message for sending.

        Raises:
            TypeError: the message is not a dict or holds a value msgpack
                cannot encode.
            MessageTooLarge: the encoding exceeds ``max_message_size``.
        """
        if not isinstance(message, dict):
            raise TypeError(f"Message must be a dict, not {type(message).__name__}")
        try:
            data = pack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"Message cannot be encoded: {exc}; use bytes, str, numbers, bools, None, lists and dicts") from exc
        if len(data) > self.max_message_size:
            raise self.MessageTooLarge(
                f"Message is {len(data)} bytes encoded; the limit is {self.max_message_size}. "
                "Split it into chunks or raise max_message_size."
            )
        return data

    # -- capacity and names -----------------------------------------------

    def get_capacity(self, channel: str) -> int:
        """Return the capacity of ``channel``.

        Process-specific names share their prefix's capacity, which is
        ``process_capacity`` unless a ``channel_capacity`` pattern matches
        the prefix.
        """
        name = non_local_name(channel)
        try:
            return self._capacity_cache[name]
        except KeyError:
            pass
        capacity = self.process_capacity if name.endswith("!") else self.capacity
        for pattern, value in self.channel_capacity:
            if pattern.match(name):
                capacity = value
                break
        # Cached by the name that decides it: every reply channel of a prefix
        # shares one entry, and single-reader names (drawn fresh per
        # connection) are not kept. Keyed by full names, the cache held
        # 10,000 one-off reply channels (about 1 MiB) in every worker.
        if "?" not in name and len(self._capacity_cache) < 10000:
            self._capacity_cache[name] = capacity
        return capacity

    def make_channel_name(self, pattern: str) -> str:
        """Return ``pattern`` with a fresh, unguessable suffix appended.

        ``pattern`` must end in ``!`` or ``?``, and the name made from it
        must be a valid channel name (so the pattern leaves room for the
        suffix under :data:`MAX_NAME_LENGTH`). The suffix is drawn from
        :mod:`secrets`: a reply channel's name is a capability, so it must
        not be predictable.

        Raises:
            TypeError: the pattern is not such a str.
        """
        if not isinstance(pattern, str) or not pattern.endswith(("!", "?")):
            raise TypeError(f"new_channel pattern must be a str ending in '!' or '?', not {pattern!r}")
        name = pattern + secrets.token_hex(12)
        try:
            self.valid_channel_name(name)
        except TypeError as exc:
            raise TypeError(f"new_channel pattern {pattern!r} cannot make a valid channel name: {exc}") from None
        return name

    # -- the operations backends implement ----------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Put ``message`` on ``channel``. Raises ``ChannelFull`` at capacity."""
        raise NotImplementedError

    def receive(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]:
        """Take one message from any of ``channels``; ``(None, None)`` when there is none."""
        raise NotImplementedError

    def receive_many(self, channels: list[str], block: bool = False) -> tuple[str | None, Message | None]:
        """The ASGI draft's name for :meth:`receive`, still called by Channels 1.x code and tests.

        Returns ``(channel, message)`` or ``(None, None)``, exactly as
        ``receive``. For several messages in one call use :meth:`receive_batch`.
        """
        return self.receive(channels, block)

    def new_channel(self, pattern: str) -> str:
        """Return a channel name, unique to this call, that starts with ``pattern``."""
        return self.make_channel_name(pattern)

    # -- groups (every shipped layer implements them: the "groups" extension) --

    def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (refreshing its membership expiry)."""
        raise NotImplementedError(f"{type(self).__name__} does not support groups")

    def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        raise NotImplementedError(f"{type(self).__name__} does not support groups")

    def group_channels(self, group: str) -> list[str]:
        """Return the channels currently in ``group``."""
        raise NotImplementedError(f"{type(self).__name__} does not support groups")

    def send_group(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group``; full members miss it (no ``ChannelFull``)."""
        raise NotImplementedError(f"{type(self).__name__} does not support groups")

    def flush(self) -> None:
        """Delete every message and group of this layer (the "flush" extension)."""
        raise NotImplementedError(f"{type(self).__name__} does not support flush")

    # -- batches (optional: these defaults loop over send/receive) ------------

    def send_batch(self, items: Iterable[tuple[str, Message]]) -> list[Exception | None]:
        """Send several messages; return one result per item, in order.

        Each result is None (queued) or the exception that item met:
        ``ChannelFull``, ``MessageTooLarge``, or ``TypeError`` for a value
        that cannot be encoded. The other items are still sent. Messages to
        one channel are queued in the order given, and once one is refused
        as full, the later ones in the batch to the same channel (for
        process-specific channels: the same prefix) are refused too, so a
        caller that retries the refused items keeps the channel's order.
        Backends override this to send a batch in fewer round trips.

        Raises:
            TypeError: ``items`` is not a list of ``(channel, message)``
                pairs, a channel name is invalid or a message is not a dict;
                nothing was sent.
        """
        items = self.valid_send_items(items)
        results: list[Exception | None] = []
        refused: set[str] = set()
        for channel, message in items:
            queue = non_local_name(channel)
            if queue in refused:
                results.append(self.refused_after_full(channel))
                continue
            try:
                self.send(channel, message)
            except self.ChannelFull as exc:
                refused.add(queue)
                results.append(exc)
            except (self.MessageTooLarge, TypeError) as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    def receive_batch(
        self, channels: list[str], max_messages: int, block: bool = False,
    ) -> list[tuple[str, Message]]:
        """Take up to ``max_messages`` messages from ``channels``.

        Same delivery rules as ``receive`` (at most once, FIFO per channel,
        process-specific channels received on their prefix and reported
        under their full names). With ``block=True``, waits (up to the
        layer's blocking timeout) only until one message is there, then
        takes whatever else is already waiting. Backends override this to
        take a batch in fewer round trips.

        Returns:
            A list of ``(channel, message)``, oldest first per channel;
            empty if nothing came.

        Raises:
            TypeError: bad channel names.
            ValueError: ``max_messages`` is not a positive integer.
        """
        channels = self.valid_channel_names(channels, receive=True)
        self.valid_max_messages(max_messages)
        received: list[tuple[str, Message]] = []
        if block:
            channel, message = self.receive(channels, block=True)
            if channel is None:
                return received
            received.append((channel, message))
        # Then one message from each channel in turn, so a busy channel
        # cannot fill the batch while a quiet one waits.
        active = list(channels)
        while active and len(received) < max_messages:
            for name in list(active):
                if len(received) >= max_messages:
                    break
                channel, message = self.receive([name])
                if channel is None:
                    active.remove(name)
                else:
                    received.append((channel, message))
        return received

    def send_batch_and_receive(
        self, items: Iterable[tuple[str, Message]], channels: list[str], max_messages: int,
    ) -> tuple[list[Exception | None], list[tuple[str, Message]]]:
        """Send a batch, then take what is waiting: ``send_batch`` and a non-blocking ``receive_batch`` in one go.

        A worker answers a message and takes its next one with this, so
        a backend that can do both in one round trip (Redis, when the
        sends and the channels are on one shard) saves one per message.
        The sends follow :meth:`send_batch`'s rules, then the receive
        takes up to ``max_messages`` of what waits, each channel's oldest
        first, and never waits (a backend may take them from one channel
        only, and come back empty-handed when it met expired messages).
        This default makes the two calls one after the other.

        Returns:
            ``(results, received)``: ``send_batch``'s results and the
            messages taken.

        Raises:
            TypeError, ValueError: as ``send_batch`` and ``receive_batch``;
                nothing was sent.
        """
        items = self.valid_send_items(items)
        channels = self.valid_channel_names(channels, receive=True)
        self.valid_max_messages(max_messages)
        return self.send_batch(items), self.receive_batch(channels, max_messages)

    def valid_send_items(self, items: Any) -> list[tuple[str, Message]]:
        """Check a ``send_batch`` batch; return it as a list of pairs, or raise ``TypeError``."""
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
            raise TypeError(f"send_batch takes a list of (channel, message) pairs, not {items!r}")
        checked = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"send_batch items must be (channel, message) pairs, not {item!r}")
            channel, message = item
            self.valid_channel_name(channel)
            if not isinstance(message, dict):
                raise TypeError(f"Message for {channel!r} must be a dict, not {type(message).__name__}")
            checked.append(item)
        return checked

    @staticmethod
    def valid_max_messages(max_messages: Any) -> int:
        """Check ``receive_batch``'s ``max_messages``; return it or raise ``ValueError``."""
        if not isinstance(max_messages, int) or isinstance(max_messages, bool) or max_messages < 1:
            raise ValueError(f"max_messages must be a positive integer, not {max_messages!r}")
        return max_messages

    def channel_full(self, channel: str) -> ChannelFull:
        """The ``ChannelFull`` for a send refused at capacity (the name shortened: it may be a capability)."""
        return self.ChannelFull(f"Channel {loggable_name(channel)!r} is at capacity ({self.get_capacity(channel)})")

    def refused_after_full(self, channel: str) -> ChannelFull:
        """The ``ChannelFull`` of a batch item following a refused one on the same channel."""
        return self.ChannelFull(
            f"Channel {loggable_name(channel)!r} is at capacity ({self.get_capacity(channel)}): an earlier message "
            "to it in the same batch was refused, so this one was not queued ahead of it"
        )

    # -- default async receives ---------------------------------------------

    def receive_twisted(self, channels: list[str]):
        """Return a Twisted ``Deferred`` firing with ``(channel, message)``.

        This default runs a blocking ``receive`` in the reactor's thread pool;
        backends with a native event-loop client override it.
        """
        from twisted.internet import threads

        channels = self.valid_channel_names(channels, receive=True)
        return threads.deferToThread(self.receive, channels, True)

    async def receive_async(self, channels: list[str]) -> tuple[str | None, Message | None]:
        """Await one ``(channel, message)`` without blocking the asyncio loop."""
        import asyncio

        channels = self.valid_channel_names(channels, receive=True)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.receive, channels, True)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__}>"


class StatisticsCounter:
    """Thread-safe global counters for the ``statistics`` extension."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages_count = 0
        self.channel_full_count = 0

    def sent(self) -> None:
        with self._lock:
            self.messages_count += 1

    def full(self) -> None:
        with self._lock:
            self.channel_full_count += 1
