"""``enforce_ordering``: run a connection's messages in their ``order``.

Every WebSocket message carries ``order`` (0 for ``websocket.connect``, then
1, 2, ...). The next order a connection may run is kept in its channel
session. A message that arrives early is *parked* on a wait channel named
after its reply channel and the order it waits for, and the consumer
returns at once; no worker spins on it. When a message completes, the
session is advanced and saved, the consumer's sends go out, and then the
wait channel of the next order is drained back onto the original channels.

Races between two workers are closed by re-reading the session after
parking: either the finishing worker sees the parked message when it
drains, or the parking worker sees the advanced order and drains itself;
a layer receive hands each parked message to only one of them, so nothing
runs twice. A message whose order already ran (a duplicate) is dropped.

* strict (the default): order *n* runs only after *n - 1*.
* ``slight=True``: order 0 (connect) runs first; the rest in any order.

A consumer that fails still advances the order (its message was handled,
badly); one that raises ``ConsumeLater`` does not.

Parking and releasing retry a full channel under :data:`FULL_RETRY` before
giving up on it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any, Callable

from asgi_backends.base import loggable_name
from asgi_backends.retry import RetryPolicy, send_retrying
from worker.exceptions import ConsumeLater

from .outbox import outbox
from .sessions import channel_session, find_message, save_channel_session, session_for_reply_channel

logger = logging.getLogger(__name__)

ORDER_KEY = "__channels_next_order"

FULL_RETRY = RetryPolicy(timeout=2.0)
"""How long a full channel is retried when parking or releasing a message (as long as the outbox's held sends)."""


def wait_channel_name(reply_channel: str, slot: int) -> str:
    """Return the channel where messages of ``reply_channel`` waiting for ``slot`` are parked."""
    digest = hashlib.sha1(reply_channel.encode("utf-8")).hexdigest()[:32]
    return f"__wait__.{digest}.{slot}"


class _Policy:
    """When a message of a given order may run, for one ordering mode."""

    def __init__(self, slight: bool) -> None:
        self.slight = slight

    def ready(self, order: int, next_order: int) -> bool:
        if self.slight:
            return (order == 0) == (next_order == 0)
        return order == next_order

    def stale(self, order: int, next_order: int) -> bool:
        if self.slight:
            return order == 0 and next_order > 0
        return order < next_order

    def slot(self, order: int) -> int:
        """The order a parked message waits for (what must become next)."""
        return min(order, 1) if self.slight else order

    def advanced(self, order: int, next_order: int) -> int | None:
        """The next order after ``order`` ran, or None if it does not change."""
        if self.slight:
            return 1 if next_order == 0 else None
        return order + 1


def release(message: Any, slot: int) -> int:
    """Put every message parked for ``slot`` back on its channel; return how many."""
    layer = message.channel_layer
    wait = wait_channel_name(message.reply_channel.name, slot)
    count = 0
    while True:
        channel, parked = layer.receive([wait], block=False)
        if channel is None:
            return count
        try:
            send_retrying(layer, parked["channel"], parked["content"], FULL_RETRY)
            count += 1
        except layer.ChannelFull:
            logger.error("Cannot release a parked message of %s: channel %s stayed full for %ss; it is lost",
                         loggable_name(message.reply_channel.name), parked["channel"], FULL_RETRY.timeout)


def enforce_ordering(func: Callable[..., Any] | None = None, *, slight: bool = False) -> Any:
    """Run the decorated consumer's messages in ``order`` per reply channel.

    Use bare (strict) or as ``@enforce_ordering(slight=True)``. Implies
    :func:`~channels.sessions.channel_session`.

    Raises (when called):
        ValueError: the message has no ``order`` key or no reply channel.
        ChannelFull: the wait channel for this connection stayed full
            (for ``FULL_RETRY.timeout`` seconds).
    """
    policy = _Policy(slight)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @channel_session
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            message = find_message(args)
            if "order" not in message.content:
                raise ValueError(
                    f"@enforce_ordering needs an 'order' key; the message on {message.channel.name} has none"
                )
            order = int(message.content["order"])
            session = message.channel_session
            next_order = session.get(ORDER_KEY, 0)
            if policy.ready(order, next_order):
                return _run(func, args, kwargs, message, order, next_order)
            if policy.stale(order, next_order):
                logger.warning("Dropping message %d on %s for %s: that order already ran",
                               order, message.channel.name, message.reply_channel.name)
                return None
            _park(message, policy, order)
            return None

        def _run(func: Callable[..., Any], args: tuple, kwargs: dict, message: Any, order: int, next_order: int) -> Any:
            session = message.channel_session
            try:
                result = func(*args, **kwargs)
            except ConsumeLater:
                raise
            except BaseException:
                new = _advance(session, order, next_order)
                if new is not None:
                    release(message, new)
                raise
            new = _advance(session, order, next_order)
            if new is not None:
                outbox.after_flush(lambda: release(message, new))
            return result

        def _advance(session: Any, order: int, next_order: int) -> int | None:
            new = policy.advanced(order, next_order)
            if new is not None:
                session[ORDER_KEY] = new
                save_channel_session(session)
            return new

        return inner

    if func is not None:
        return decorator(func)
    return decorator


def _park(message: Any, policy: _Policy, order: int) -> None:
    slot = policy.slot(order)
    layer = message.channel_layer
    wait = wait_channel_name(message.reply_channel.name, slot)
    try:
        send_retrying(layer, wait, {"channel": message.channel.name, "content": message.content}, FULL_RETRY)
    except layer.ChannelFull:
        raise layer.ChannelFull(
            f"Cannot park out-of-order message {order} of {loggable_name(message.reply_channel.name)}: "
            f"{wait} stayed full for {FULL_RETRY.timeout}s"
        ) from None
    # The message we wait for may have finished while we parked: look again.
    fresh = session_for_reply_channel(message.reply_channel.name).get(ORDER_KEY, 0)
    if policy.ready(order, fresh):
        release(message, slot)
