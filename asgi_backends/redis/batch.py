"""The Redis layer's batch operations: many messages in one round trip per shard.

``send_batch`` runs one Lua call per shard for its share of a batch;
``receive_batch`` empties each shard's lists one entry from each in turn, and
when they are empty waits in ``BLMPOP`` so a burst arrives in the same round
trip. :class:`~asgi_backends.redis.layer.RedisChannelLayer` mixes this in;
the methods rely on its routing, encoding and decoding.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, NamedTuple

import redis

from ..base import Message, non_local_name
from .blocking import pop_many
from .connection import Shard

logger = logging.getLogger(__name__)


def unknown_command(error: Exception) -> bool:
    """True if ``error`` is Redis refusing a command it does not have (``BLMPOP``/``LMPOP`` before 7.0)."""
    return "unknown command" in str(error).lower()


class SendCall(NamedTuple):
    """One script call of a ``send_batch``: which items it carries to which shard, and its arguments."""

    shard: Shard
    indexes: list[int]
    script: str
    keys: tuple[str, ...]
    args: Any


class BatchOperations:
    """``send_batch`` and ``receive_batch`` for :class:`~asgi_backends.redis.layer.RedisChannelLayer`."""
    def send_batch(self, items: Iterable[tuple[str, Message]]) -> list[Exception | None]:
        """Send several messages in one round trip per shard involved.

        Per message, the same rules and results as :meth:`send` (see
        :meth:`~asgi_backends.base.BaseChannelLayer.send_batch` for the
        contract): each item's result is None or the ``ChannelFull``,
        ``MessageTooLarge`` or ``TypeError`` it met, the others are still
        sent, and a refused message's later ones to the same channel are
        refused too. Each shard runs one Lua call for its share of the batch.

        Raises:
            TypeError: not a list of ``(channel, message)`` pairs, a bad
                channel name or a message that is not a dict; nothing sent.
            LayerUnavailable: Redis cannot be reached. The shards answered
                before the failure may have queued their share.
        """
        items = self.valid_send_items(items)
        results, calls = self.plan_sends(items)
        for call in calls:
            self.collect_sends(items, results, call, call.shard.run(call.script, call.keys, call.args))
        return results

    def plan_sends(self, items: list[tuple[str, Message]]) -> tuple[list[Exception | None], list[SendCall]]:
        """Encode checked ``send_batch`` items and group them into one script call per shard.

        The blocking :meth:`send_batch` and the reactor's client
        (:mod:`~asgi_backends.redis.reactor_client`) both run these calls
        and hand each reply to :meth:`collect_sends`.

        Returns:
            ``(results, calls)``: ``results`` holds None per item, or the
            ``MessageTooLarge`` / ``TypeError`` its encoding met (such an
            item is in no call).
        """
        results: list[Exception | None] = [None] * len(items)
        crypter = self._crypter
        prefix = self.prefix
        if len(items) == 1:
            # One message: the single-send script is the cheaper call.
            channel, message = items[0]
            try:
                data = self.encode(message)
            except (self.MessageTooLarge, TypeError) as exc:
                return [exc], []
            if crypter is not None:
                data = crypter.encrypt(data)
            shard, key = self._route(channel)
            queue = key[len(prefix):]
            stats = prefix + "stats:"
            args = (prefix, queue, channel, data, self._expiry_ms, self.get_capacity(channel))
            return results, [SendCall(shard, [0], "send", (key, stats + queue, stats), args)]
        batches: dict[Shard, SendCall] = {}
        stats_keys = (prefix + "stats:",)
        for index, (channel, message) in enumerate(items):
            try:
                data = self.encode(message)
            except (self.MessageTooLarge, TypeError) as exc:
                results[index] = exc
                continue
            if crypter is not None:
                data = crypter.encrypt(data)
            shard, key = self._route(channel)
            call = batches.get(shard)
            if call is None:
                call = batches[shard] = SendCall(shard, [], "send_batch", stats_keys, [prefix, self._expiry_ms])
            call.indexes.append(index)
            call.args.extend((key[len(prefix):], channel, data, self.get_capacity(channel)))
        return results, list(batches.values())

    def collect_sends(self, items: list[tuple[str, Message]], results: list[Exception | None], call: SendCall,
                      reply: Any) -> None:
        """Record in ``results`` what Redis answered to one of :meth:`plan_sends`' calls.

        A refused message gets ``ChannelFull``; the later ones of the call to
        the same list get the ``ChannelFull`` saying they were held back
        behind it.
        """
        if call.script == "send":
            if not reply:
                results[call.indexes[0]] = self.channel_full(items[call.indexes[0]][0])
            return
        refused: set[str] = set()
        # One exception for all the held-back messages to one channel: a full channel can refuse
        # thousands of a burst's messages (every socket's disconnect), again at each retry.
        held_back: dict[str, Exception] = {}
        for index, queued in zip(call.indexes, reply):
            if not queued:
                channel = items[index][0]
                queue = non_local_name(channel)
                if queue in refused:
                    exc = held_back.get(channel)
                    if exc is None:
                        exc = held_back[channel] = self.refused_after_full(channel)
                    results[index] = exc
                else:
                    refused.add(queue)
                    results[index] = self.channel_full(channel)

    def receive_batch(
        self, channels: list[str], max_messages: int, block: bool = False,
    ) -> list[tuple[str, Message]]:
        """Take up to ``max_messages`` messages in one round trip per shard.

        Without blocking, each shard's lists are emptied one entry from each
        in turn by one Lua call, so a busy channel cannot fill the batch
        alone. With ``block=True`` on one shard, one ``BLMPOP`` (dated by
        the server's ``TIME`` in the same round trip) takes up to
        ``max_messages`` from the first list, in a random order, that has
        any, or waits (up to ``blocking_timeout``) for the first push and
        takes the burst it came in; on Redis < 7.0 it is a ``BLPOP`` of one.
        Across shards, the Lua calls first, then with nothing waiting a
        ``BLPOP`` on them all and a non-blocking top-up.

        Returns:
            ``(channel, message)`` pairs, oldest first per channel; empty if
            nothing came.

        Raises:
            TypeError: bad channel names.
            ValueError: ``max_messages`` is not a positive integer.
            LayerUnavailable: Redis cannot be reached.
        """
        self.valid_max_messages(max_messages)
        if max_messages == 1:
            # One message: the single-receive script is the cheaper call.
            channel, message = self.receive(channels, block=block)
            return [] if channel is None else [(channel, message)]
        targets = self._targets(self.valid_channel_names(channels, receive=True))
        if not targets:
            return []
        if block and len(targets) == 1:
            # One shard: the dated blocking pop takes what waits (or the burst that comes) in one
            # round trip, from the first of the shuffled lists that has any.
            received: list[tuple[str, Message]] = []
            self._decode_into(self._pop_fresh(*targets[0], max_messages), received)
            return received
        received = self._take_many(targets, max_messages)
        if received or not block:
            return received
        popped = pop_many(targets, self.blocking_timeout)
        if popped is None:
            return received
        # The lists were empty a moment ago, so this entry is fresh.
        channel, message = self._decode(popped[1])
        if channel is not None:
            received.append((channel, message))
        if max_messages > 1:
            # What was pushed with it (a burst) comes in the same batch.
            received.extend(self._take_many(targets, max_messages - len(received)))
        return received

    def send_batch_and_receive(
        self, items: Iterable[tuple[str, Message]], channels: list[str], max_messages: int,
    ) -> tuple[list[Exception | None], list[tuple[str, Message]]]:
        """``send_batch``, then a non-blocking ``receive_batch``: one round trip when all is on one shard.

        When the messages go to the shard the channels are on (always, with
        one shard), both scripts travel in one pipeline; otherwise this
        makes the two calls in turn. See
        :meth:`~asgi_backends.base.BaseChannelLayer.send_batch_and_receive`.

        Raises:
            TypeError, ValueError: bad items, names or ``max_messages``;
                nothing sent.
            LayerUnavailable: Redis cannot be reached; the messages may
                have been sent.
        """
        items = self.valid_send_items(items)
        self.valid_max_messages(max_messages)
        targets = self._fetch_targets(channels)
        results, calls = self.plan_sends(items)
        received: list[tuple[str, Message]] = []
        if len(targets) == 1 and all(call.shard is targets[0][0] for call in calls):
            shard, keys = targets[0]
            scripts = [(call.script, call.keys, call.args) for call in calls]
            if shard in self._without_blmpop:  # Redis < 7.0: no LMPOP
                replies = shard.run_many([*scripts, ("receive_batch", keys, (self.prefix, max_messages))])
                entries = replies[-1]
            else:
                # The blocking receive's plain pop, without the wait; TIME dates the entries.
                replies = shard.run_many(scripts, (("TIME",), ("LMPOP", len(keys), *keys, "LEFT",
                                                              "COUNT", max_messages)))
                popped = replies[-1]
                if isinstance(popped, redis.ResponseError):
                    if not unknown_command(popped):
                        raise popped
                    self.lacks_blmpop(shard)  # the sends ran; the pop did not
                    entries = shard.run("receive_batch", keys, (self.prefix, max_messages))
                else:
                    entries, expired = self.fresh_entries(replies[-2], popped, True)
                    if expired:
                        shard.run("expired", (), (self.prefix, *expired))
            for call, reply in zip(calls, replies):
                self.collect_sends(items, results, call, reply)
            self._decode_into(entries, received)
            return results, received
        for call in calls:
            self.collect_sends(items, results, call, call.shard.run(call.script, call.keys, call.args))
        if targets:
            received = self._take_many(targets, max_messages)
        return results, received

    def _pop_fresh(self, shard: Shard, keys: list[str], count: int) -> list[bytes]:
        """Wait (up to ``blocking_timeout``) on lists of one shard; return up to ``count`` unexpired entries.

        One round trip where the scripts' take-then-block needs two: the
        server's ``TIME`` travels with the blocking pop (``BLPOP``, or
        ``BLMPOP`` for several entries of the first list that has any), so
        entries the pop finds waiting are checked against the clock the
        scripts use, and those pushed while it waited are younger than that
        clock, so fresh. Expired entries are dropped and their channels
        leave their groups, as ``receive.lua`` does. Lists are tried in the
        order given.

        Returns:
            the entries, oldest first; empty if nothing came in time.
        """
        while True:
            many = count > 1 and shard not in self._without_blmpop
            try:
                clock, popped = shard.execute_many(("TIME",), self.pop_command(keys, count, many))
            except redis.ResponseError as exc:
                if not many or not unknown_command(exc):
                    raise
                self.lacks_blmpop(shard)
                continue
            fresh, expired = self.fresh_entries(clock, popped, many)
            if expired:
                shard.run("expired", (), (self.prefix, *expired))
            if fresh:
                return fresh
            if popped is None:
                return []

    def pop_command(self, keys: list[str], count: int, many: bool) -> tuple[Any, ...]:
        """The blocking pop of :meth:`_pop_fresh`: ``BLMPOP`` for up to ``count`` entries if ``many``, else ``BLPOP``."""
        timeout = self.blocking_timeout
        if many:
            return ("BLMPOP", timeout, len(keys), *keys, "LEFT", "COUNT", count)
        return ("BLPOP", *keys, timeout)

    @staticmethod
    def fresh_entries(clock: list[bytes], popped: Any, many: bool) -> tuple[list[bytes], list[bytes]]:
        """Split what a blocking pop returned into unexpired entries and the channels of expired ones.

        ``clock`` is Redis's ``TIME`` from the same round trip: an entry
        whose stamp is not past it has expired.
        """
        if popped is None:
            return [], []
        now = int(clock[0]) * 1000 + int(clock[1]) // 1000
        fresh: list[bytes] = []
        expired: list[bytes] = []
        for entry in (popped[1] if many else popped[1:]):
            colon = entry.index(b":")
            if int(entry[:colon]) > now:
                fresh.append(entry)
            else:
                expired.append(entry[colon + 1:entry.index(b":", colon + 1)])
        return fresh, expired

    def lacks_blmpop(self, shard: Shard) -> None:
        """Note that ``shard``'s Redis has no ``BLMPOP`` (older than 7.0): its blocking pops use ``BLPOP``."""
        logger.info("Redis at %s has no BLMPOP (Redis < 7.0); blocking batch receives use BLPOP", shard.label)
        self._without_blmpop.add(shard)

    def _take_many(self, targets: list[tuple[Shard, list[str]]], wanted: int) -> list[tuple[str, Message]]:
        # Each shard first gets its share of the batch, so channels on one
        # shard cannot crowd out those on another; shards that filled their
        # share are then asked for the rest.
        received: list[tuple[str, Message]] = []
        share = -(-wanted // len(targets))
        more: list[tuple[Shard, list[str]]] = []
        for target in targets:
            room = min(share, wanted - len(received))
            if room <= 0:
                break
            entries = target[0].run("receive_batch", target[1], (self.prefix, room))
            if len(entries) == room and len(targets) > 1:
                more.append(target)
            self._decode_into(entries, received)
        for shard, keys in more:
            if len(received) >= wanted:
                break
            self._decode_into(shard.run("receive_batch", keys, (self.prefix, wanted - len(received))), received)
        return received

    def _decode_into(self, entries: list[bytes], received: list[tuple[str, Message]], share: bool = False) -> None:
        """Decode ``entries`` onto ``received``, dropping (and logging) those that do not decode.

        With ``share``, consecutive entries with the same payload (the members
        of one process in a group send) get one message object, decoded (and
        decrypted) once: only for a caller that never changes a message.
        """
        last_data: bytes | None = None
        last_message: Message | None = None
        for entry in entries:
            _, name, data = entry.split(b":", 2)
            if share and data == last_data:
                if last_message is not None:
                    received.append((name.decode("ascii"), last_message))
                continue
            channel, message = self._decode_parts(name, data)
            last_data, last_message = data, message
            if channel is not None:
                received.append((channel, message))
