"""The conformance suite every channel layer passes (DESIGN §4).

Subclass :class:`ConformanceTests` in a pytest module (name the subclass
``Test...``) and implement :meth:`ConformanceTests.make_layer`::

    class TestMyLayer(ConformanceTests):
        def make_layer(self, **config):
            return MyLayer(**config)

``make_layer`` receives only these layer-agnostic keywords; translate them
if your layer spells them differently: ``expiry``, ``group_expiry``,
``capacity``, ``channel_capacity``, ``blocking_timeout`` (longest wait of
``receive(block=True)``). Build layers with :meth:`ConformanceTests.layer`
inside tests: every layer built that way is flushed (and closed, if it has a
``close()``) when the test ends, so each test starts from an empty store as
long as the previous one ended normally.

Layers that list ``twisted`` in ``extensions`` also implement
:meth:`ConformanceTests.layer_spec`, because ``receive_twisted`` is checked
in a child process running a real reactor (a reactor cannot be restarted
inside the test process). Layers whose ``cross_process`` attribute is true
(the default) are also checked across two instances built with the same
configuration, standing in for two processes.

Expiry tests use one-second expiries; the whole suite takes a few seconds
per layer.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable

import pytest

from .base import BaseChannelLayer
from .exceptions import ChannelFull, MessageTooLarge

EXPIRY = 1.0
"""Expiry (seconds) the expiry tests configure; waits are derived from it."""


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; return that.

    Raises:
        AssertionError: ``condition`` stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition {condition!r} not met within {timeout}s")
        time.sleep(interval)


def drain(layer: BaseChannelLayer, channels: list[str], limit: int = 10000) -> list[tuple[str, dict]]:
    """Receive (without blocking) until ``channels`` are empty; return what came."""
    received = []
    for _ in range(limit):
        channel, message = layer.receive(channels)
        if channel is None:
            return received
        received.append((channel, message))
    raise AssertionError(f"{channels!r} still not empty after {limit} receives")


class ConformanceTests:
    """The channel layer contract, as tests. Subclass and implement ``make_layer``."""

    def make_layer(self, **config: Any) -> BaseChannelLayer:
        """Return a new layer built with ``config`` (see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_layer(**config)")

    def layer_spec(self, **config: Any) -> tuple[str, dict]:
        """Return ``("package.module.Class", kwargs)`` building the same layer in another process.

        Needed only by layers listing ``twisted`` in ``extensions``; kwargs
        must be JSON-serialisable.
        """
        raise NotImplementedError(
            f"{type(self).__name__} lists the 'twisted' extension, so it must implement layer_spec(**config)"
        )

    @pytest.fixture(autouse=True)
    def _track_layers(self):
        self._layers: list[BaseChannelLayer] = []
        yield
        for layer in self._layers:
            layer.flush()
            close = getattr(layer, "close", None)
            if close is not None:
                close()

    def layer(self, **config: Any) -> BaseChannelLayer:
        """Build a layer with :meth:`make_layer`, flushed when the test ends."""
        layer = self.make_layer(**config)
        self._layers.append(layer)
        return layer

    def pair(self, **config: Any) -> tuple[BaseChannelLayer, BaseChannelLayer]:
        """Two handles on one store: two instances, or one instance twice for one-process layers."""
        first = self.layer(**config)
        if not first.cross_process:
            return first, first
        return first, self.layer(**config)

    # -- names and messages ----------------------------------------------

    @pytest.mark.parametrize(
        "name",
        ["", "a b", "é", "a" * 100, "a!!b", "a?b?c", "a!b?c", "a?", "a.b?", "with:colon", "with/slash",
         b"bytes", 12, None],
    )
    def test_send_rejects_bad_channel_name(self, name):
        layer = self.layer()
        with pytest.raises(TypeError):
            layer.send(name, {"x": 1})

    def test_layer_meets_the_typed_contract(self):
        from asgi_backends.base import CHANNEL_LAYER_MEMBERS, ChannelLayer

        layer = self.layer()
        assert isinstance(layer, ChannelLayer)
        assert isinstance(layer.cross_process, bool)
        missing = [name for name in CHANNEL_LAYER_MEMBERS if not hasattr(layer, name)]
        assert not missing

    def test_receive_many_is_the_1x_name_of_receive(self):
        layer = self.layer()
        assert layer.receive_many(["conf.rm"]) == (None, None)
        layer.send("conf.rm", {"n": 1})
        layer.send("conf.rm", {"n": 2})
        assert layer.receive_many(["conf.rm"]) == ("conf.rm", {"n": 1})
        assert layer.receive_many(["conf.rm"], block=True) == ("conf.rm", {"n": 2})

    def test_receive_rejects_bad_names(self):
        layer = self.layer()
        with pytest.raises(TypeError):
            layer.receive(["bad name"])
        with pytest.raises(TypeError):
            layer.receive("a.string")  # one str is not a list of names
        with pytest.raises(TypeError, match="prefix"):
            layer.receive(["proc!abc"])  # process-specific: receive on "proc!"

    @pytest.mark.parametrize("message", [None, [], "text", b"bytes", 1, [("a", 1)]])
    def test_send_rejects_non_dict(self, message):
        layer = self.layer()
        with pytest.raises(TypeError):
            layer.send("conf.test", message)

    def test_send_rejects_unencodable_values(self):
        layer = self.layer()
        with pytest.raises(TypeError):
            layer.send("conf.test", {"x": object()})
        assert layer.receive(["conf.test"]) == (None, None)

    @pytest.mark.parametrize("name", ["", "a b", "a!", "a?b", "x" * 100, b"g", None])
    def test_group_names_validated(self, name):
        layer = self.layer()
        if "groups" not in layer.extensions:
            pytest.skip("layer has no groups extension")
        with pytest.raises(TypeError):
            layer.group_add(name, "conf.test")
        with pytest.raises(TypeError):
            layer.send_group(name, {"x": 1})
        with pytest.raises(TypeError):
            layer.group_channels(name)

    def test_layer_exposes_exceptions(self):
        layer = self.layer()
        assert issubclass(layer.ChannelFull, ChannelFull)
        assert issubclass(layer.MessageTooLarge, MessageTooLarge)

    # -- send and receive --------------------------------------------------

    def test_round_trip_keeps_types(self):
        layer = self.layer()
        message = {
            "bytes": b"\x00\xffbin",
            "text": "h\u00e9llo \u2603",
            "text_like_bytes": "abc",
            "bytes_like_text": b"abc",
            "int": -(2**40),
            "float": 1.5,
            "true": True,
            "false": False,
            "none": None,
            "list": [1, "two", b"three", [4.0, None], {"five": 5}],
            "dict": {"nested": {"deeper": [b"x", "y"]}},
            "empty": {},
        }
        layer.send("conf.round_trip", message)
        channel, received = layer.receive(["conf.round_trip"])
        assert channel == "conf.round_trip"
        assert received == message
        assert type(received["bytes_like_text"]) is bytes
        assert type(received["text_like_bytes"]) is str
        assert type(received["list"][2]) is bytes
        assert type(received["true"]) is bool

    def test_receive_empty(self):
        layer = self.layer()
        assert layer.receive(["conf.nothing"]) == (None, None)
        assert layer.receive(["conf.nothing", "conf.nothing2"], block=False) == (None, None)

    def test_receive_from_several_channels(self):
        layer = self.layer()
        layer.send("conf.a", {"n": "a"})
        layer.send("conf.b", {"n": "b"})
        got = {layer.receive(["conf.a", "conf.b", "conf.c"])[0] for _ in range(2)}
        assert got == {"conf.a", "conf.b"}
        assert layer.receive(["conf.a", "conf.b", "conf.c"]) == (None, None)

    def test_fifo_per_channel(self):
        layer = self.layer()
        for i in range(20):
            layer.send("conf.fifo", {"i": i})
        assert [m["i"] for _, m in drain(layer, ["conf.fifo"])] == list(range(20))

    def test_fair_across_channels(self):
        # A busy channel must not starve another one listed after it.
        layer = self.layer()
        for i in range(20):
            layer.send("conf.busy", {"i": i})
        layer.send("conf.quiet", {"i": 0})
        seen = [layer.receive(["conf.busy", "conf.quiet"])[0] for _ in range(15)]
        assert "conf.quiet" in seen

    def test_message_too_large(self):
        layer = self.layer()
        with pytest.raises(MessageTooLarge):
            layer.send("conf.big", {"data": b"x" * (1024 * 1024 + 1)})
        assert layer.receive(["conf.big"]) == (None, None)
        layer.send("conf.big", {"data": b"y" * 500_000})
        assert layer.receive(["conf.big"])[1]["data"] == b"y" * 500_000

    def test_at_most_once_between_two_receivers(self):
        count = 200
        first, second = self.pair(capacity=count)
        second = second or first
        for i in range(count):
            first.send("conf.once", {"i": i})
        got: list[list[int]] = [[], []]

        def consume(layer, into):
            while True:
                channel, message = layer.receive(["conf.once"])
                if channel is None:
                    return
                into.append(message["i"])

        threads = [threading.Thread(target=consume, args=(layer, got[n])) for n, layer in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert sorted(got[0] + got[1]) == list(range(count))

    def test_second_instance_shares_store(self):
        first, second = self.pair()
        first.send("conf.shared", {"from": "first"})
        assert second.receive(["conf.shared"]) == ("conf.shared", {"from": "first"})

    # -- process-specific and single-reader channels -------------------------

    def test_process_specific_channels_received_on_prefix(self):
        layer = self.layer()
        first = layer.new_channel("conf.reply!")
        second = layer.new_channel("conf.reply!")
        other = layer.new_channel("conf.other!")
        assert first.startswith("conf.reply!") and first != second
        layer.send(first, {"to": 1})
        layer.send(second, {"to": 2})
        layer.send(other, {"to": 3})
        got = drain(layer, ["conf.reply!"])
        assert got == [(first, {"to": 1}), (second, {"to": 2})]
        assert drain(layer, ["conf.other!"]) == [(other, {"to": 3})]

    def test_process_specific_by_plain_name(self):
        layer = self.layer()
        layer.send("conf.proc!client1", {"v": 1})
        assert layer.receive(["conf.proc!"]) == ("conf.proc!client1", {"v": 1})

    def test_single_reader_channel(self):
        layer = self.layer()
        name = layer.new_channel("conf.body?")
        assert name.startswith("conf.body?") and len(name) > len("conf.body?")
        for i in range(5):
            layer.send(name, {"i": i})
        assert [m["i"] for _, m in drain(layer, [name])] == list(range(5))

    def test_single_reader_pattern_is_not_a_channel(self):
        # asgiref 1.x: "Single-reader channel names must not end with ?" -- a
        # TypeError from send, receive and the group operations alike.
        layer = self.layer()
        with pytest.raises(TypeError, match="new_channel"):
            layer.send("conf.body?", {"x": 1})
        with pytest.raises(TypeError):
            layer.receive(["conf.body?"])
        with pytest.raises(TypeError):
            layer.receive(["conf.ok", "conf.body?"], block=True)
        with pytest.raises(TypeError):
            layer.receive_batch(["conf.body?"], 5)
        with pytest.raises(TypeError):
            layer.send_batch([("conf.ok", {"x": 1}), ("conf.body?", {"x": 2})])
        assert layer.receive(["conf.ok"]) == (None, None)  # a refused batch sends nothing
        if "groups" in layer.extensions:
            with pytest.raises(TypeError):
                layer.group_add("conf-group", "conf.body?")
            with pytest.raises(TypeError):
                layer.group_discard("conf-group", "conf.body?")
            assert layer.group_channels("conf-group") == []
        # Still fine: the pattern itself, and a process-specific prefix to receive on.
        name = layer.new_channel("conf.body?")
        layer.send(name, {"x": 3})
        assert layer.receive([name]) == (name, {"x": 3})
        assert layer.receive(["conf.reply!"]) == (None, None)

    def test_new_channel_unique_and_unguessable(self):
        layer = self.layer()
        names = [layer.new_channel("conf.new!") for _ in range(1000)]
        names += [layer.new_channel("conf.new?") for _ in range(1000)]
        assert len(set(names)) == 2000
        for name in names:
            assert layer.valid_channel_name(name)
            suffix = re.split(r"[!?]", name, maxsplit=1)[1]
            # At least 64 bits of randomness as hex or similar alphabet.
            assert len(suffix) >= 12, name

    @pytest.mark.parametrize(
        "pattern",
        ["conf.new", "conf new!", "conf.new!x", "conf?new?", "x" * 80 + "?", None, b"conf!"],
    )
    def test_new_channel_rejects_bad_pattern(self, pattern):
        layer = self.layer()
        with pytest.raises(TypeError):
            layer.new_channel(pattern)

    # -- blocking receive ----------------------------------------------------

    def _blocking_receive_woken_by(self, receiver, sender):
        started = threading.Event()
        result: list = []

        def receive():
            started.set()
            result.append(receiver.receive(["conf.block", "conf.block2"], block=True))
            result.append(time.monotonic())

        thread = threading.Thread(target=receive)
        thread.start()
        started.wait(5)
        time.sleep(0.05)  # let the receiver reach its blocking wait; correctness does not depend on it
        sent_at = time.monotonic()
        sender.send("conf.block2", {"woken": True})
        thread.join(5)
        assert not thread.is_alive()
        assert result[0] == ("conf.block2", {"woken": True})
        # Woken by the send, not by the 5 s blocking timeout.
        assert result[1] - sent_at < 2.5

    def test_blocking_receive_woken_from_another_thread(self):
        layer = self.layer(blocking_timeout=5)
        self._blocking_receive_woken_by(layer, layer)

    def test_blocking_receive_woken_by_another_instance(self):
        receiver, sender = self.pair(blocking_timeout=5)
        self._blocking_receive_woken_by(receiver, sender)

    def test_blocking_receive_times_out(self):
        layer = self.layer(blocking_timeout=0.3)
        start = time.monotonic()
        assert layer.receive(["conf.block"], block=True) == (None, None)
        assert 0.2 <= time.monotonic() - start < 3

    def test_blocking_receive_returns_waiting_message_at_once(self):
        layer = self.layer(blocking_timeout=5)
        layer.send("conf.block", {"ready": 1})
        start = time.monotonic()
        assert layer.receive(["conf.block"], block=True) == ("conf.block", {"ready": 1})
        assert time.monotonic() - start < 2.5

    # -- expiry --------------------------------------------------------------

    def test_unread_message_expires(self):
        layer = self.layer(expiry=EXPIRY)
        layer.send("conf.exp", {"old": True})
        layer.send("conf.exp.fresh", {"fresh": True})
        assert layer.receive(["conf.exp.fresh"]) == ("conf.exp.fresh", {"fresh": True})
        time.sleep(EXPIRY + 0.3)
        assert layer.receive(["conf.exp"]) == (None, None)

    def test_expiry_is_per_message(self):
        layer = self.layer(expiry=EXPIRY)
        layer.send("conf.exp", {"n": 1})
        time.sleep(EXPIRY * 0.6)
        layer.send("conf.exp", {"n": 2})
        time.sleep(EXPIRY * 0.6)
        assert layer.receive(["conf.exp"]) == ("conf.exp", {"n": 2})
        assert layer.receive(["conf.exp"]) == (None, None)

    def test_expired_messages_free_capacity(self):
        layer = self.layer(expiry=EXPIRY, capacity=2)
        layer.send("conf.exp", {"n": 1})
        layer.send("conf.exp", {"n": 2})
        with pytest.raises(ChannelFull):
            layer.send("conf.exp", {"n": 3})
        time.sleep(EXPIRY + 0.3)
        layer.send("conf.exp", {"n": 4})
        assert drain(layer, ["conf.exp"]) == [("conf.exp", {"n": 4})]

    # -- capacity ------------------------------------------------------------

    def test_capacity(self):
        layer = self.layer(capacity=3)
        for i in range(3):
            layer.send("conf.cap", {"i": i})
        with pytest.raises(layer.ChannelFull):
            layer.send("conf.cap", {"i": 3})
        layer.send("conf.cap.other", {"i": 0})  # other channels unaffected
        assert layer.receive(["conf.cap"])[1] == {"i": 0}
        layer.send("conf.cap", {"i": 4})
        assert [m["i"] for _, m in drain(layer, ["conf.cap"])] == [1, 2, 4]

    def test_channel_capacity_overrides(self):
        layer = self.layer(
            capacity=5,
            channel_capacity={
                "conf.exact": 1,
                "conf.glob.*": 2,
                re.compile(r"^conf\.regex\.\d+$"): 3,
            },
        )
        for name, limit in [("conf.exact", 1), ("conf.glob.a", 2), ("conf.regex.42", 3), ("conf.default", 5)]:
            for i in range(limit):
                layer.send(name, {"i": i})
            with pytest.raises(ChannelFull):
                layer.send(name, {"i": limit})

    def test_process_specific_channels_share_capacity(self):
        layer = self.layer(capacity=5, process_capacity=2)
        layer.send("conf.proc!a", {"n": 1})
        layer.send("conf.proc!b", {"n": 2})
        with pytest.raises(ChannelFull):
            layer.send("conf.proc!c", {"n": 3})
        layer.send("conf.proc2!c", {"n": 3})

    def test_a_full_reply_channel_is_not_named_whole_in_the_error(self):
        layer = self.layer(process_capacity=1)
        secret = "conf.reply!" + "f" * 24  # a reply channel's suffix is a capability
        layer.send(secret, {"n": 1})
        with pytest.raises(ChannelFull) as refused:
            layer.send(secret, {"n": 2})
        assert secret not in str(refused.value) and "conf.reply!ffff" in str(refused.value)
        results = layer.send_batch([(secret, {"n": 3}), (secret, {"n": 4})])
        assert all(isinstance(r, ChannelFull) and secret not in str(r) for r in results)

    def test_process_specific_prefix_capacity_defaults_to_process_capacity(self):
        # One interface server's clients share a prefix: a broadcast to more
        # sockets than ``capacity`` must still reach every one of them.
        layer = self.layer(capacity=2)
        for n in range(10):
            layer.send(f"conf.many!{n}", {"n": n})
        layer.send("conf.few", {"n": 0})
        layer.send("conf.few", {"n": 1})
        with pytest.raises(ChannelFull):
            layer.send("conf.few", {"n": 2})
        overridden = self.layer(capacity=2, channel_capacity={"conf.small!*": 3})
        for n in range(3):
            overridden.send(f"conf.small!{n}", {"n": n})
        with pytest.raises(ChannelFull):
            overridden.send("conf.small!x", {"n": 3})

    # -- groups --------------------------------------------------------------

    def _groups(self, **config):
        layer = self.layer(**config)
        if "groups" not in layer.extensions:
            pytest.skip("layer has no groups extension")
        return layer

    def test_groups(self):
        layer = self._groups()
        reply = layer.new_channel("conf.reply!")
        layer.group_add("conf-group", "conf.g1")
        layer.group_add("conf-group", reply)
        layer.group_add("conf-group", "conf.g1")  # twice is once
        assert sorted(layer.group_channels("conf-group")) == sorted(["conf.g1", reply])
        layer.send_group("conf-group", {"to": "all"})
        assert layer.receive(["conf.g1"]) == ("conf.g1", {"to": "all"})
        assert layer.receive(["conf.reply!"]) == (reply, {"to": "all"})
        layer.group_discard("conf-group", "conf.g1")
        layer.group_discard("conf-group", "conf.not-a-member")
        assert layer.group_channels("conf-group") == [reply]
        layer.send_group("conf-group", {"to": "rest"})
        assert layer.receive(["conf.g1"]) == (None, None)
        assert layer.receive(["conf.reply!"]) == (reply, {"to": "rest"})

    def test_group_is_empty_by_default(self):
        layer = self._groups()
        assert layer.group_channels("conf-nobody") == []
        layer.send_group("conf-nobody", {"x": 1})

    def test_send_group_drops_for_full_member(self):
        layer = self._groups(capacity=1)
        layer.group_add("conf-group", "conf.full")
        layer.group_add("conf-group", "conf.room")
        layer.send("conf.full", {"n": "first"})
        layer.send_group("conf-group", {"n": "group"})  # must not raise
        assert drain(layer, ["conf.full"]) == [("conf.full", {"n": "first"})]
        assert drain(layer, ["conf.room"]) == [("conf.room", {"n": "group"})]
        assert "statistics" not in layer.extensions or layer.global_statistics()["channel_full_count"] >= 1

    def test_send_group_to_many_members(self):
        layer = self._groups()
        members = [f"conf.member{i}" for i in range(50)] + [f"conf.proc{i % 3}!m{i}" for i in range(50)]
        for name in members:
            layer.group_add("conf-many", name)
        layer.send_group("conf-many", {"hello": "all"})
        got = drain(layer, [f"conf.member{i}" for i in range(50)] + ["conf.proc0!", "conf.proc1!", "conf.proc2!"])
        assert sorted(channel for channel, _ in got) == sorted(members)

    def test_group_membership_expires(self):
        layer = self._groups(group_expiry=EXPIRY)
        layer.group_add("conf-group", "conf.g1")
        assert layer.group_channels("conf-group") == ["conf.g1"]
        wait_for(lambda: layer.group_channels("conf-group") == [], timeout=EXPIRY + 3)
        layer.send_group("conf-group", {"x": 1})
        assert layer.receive(["conf.g1"]) == (None, None)

    def test_group_add_renews_membership(self):
        layer = self._groups(group_expiry=EXPIRY)
        layer.group_add("conf-group", "conf.g1")
        time.sleep(EXPIRY * 0.6)
        layer.group_add("conf-group", "conf.g1")
        time.sleep(EXPIRY * 0.6)
        assert layer.group_channels("conf-group") == ["conf.g1"]

    def test_member_leaves_group_when_its_message_expires_unread(self):
        layer = self._groups(expiry=EXPIRY)
        layer.group_add("conf-group", "conf.reader")
        layer.group_add("conf-group", "conf.gone!x")
        layer.send_group("conf-group", {"n": 1})
        assert layer.receive(["conf.reader"]) == ("conf.reader", {"n": 1})
        time.sleep(EXPIRY + 0.3)
        layer.send_group("conf-group", {"n": 2})  # notices conf.gone!x's unread, expired message
        assert layer.group_channels("conf-group") == ["conf.reader"]
        assert layer.receive(["conf.reader"]) == ("conf.reader", {"n": 2})
        assert layer.receive(["conf.gone!"]) == (None, None)

    def test_group_across_instances(self):
        first, second = self.pair()
        if "groups" not in first.extensions:
            pytest.skip("layer has no groups extension")
        first.group_add("conf-group", "conf.g1")
        second.send_group("conf-group", {"from": "second"})
        assert first.receive(["conf.g1"]) == ("conf.g1", {"from": "second"})

    # -- flush and statistics -----------------------------------------------

    def test_flush(self):
        layer = self.layer()
        if "flush" not in layer.extensions:
            pytest.skip("layer has no flush extension")
        layer.send("conf.flush", {"x": 1})
        layer.send("conf.flush!a", {"x": 1})
        if "groups" in layer.extensions:
            layer.group_add("conf-group", "conf.flush")
        layer.flush()
        assert layer.receive(["conf.flush", "conf.flush!"]) == (None, None)
        if "groups" in layer.extensions:
            assert layer.group_channels("conf-group") == []
        layer.send("conf.flush", {"after": True})
        assert layer.receive(["conf.flush"]) == ("conf.flush", {"after": True})

    def test_statistics(self):
        layer = self.layer(capacity=2)
        if "statistics" not in layer.extensions:
            pytest.skip("layer has no statistics extension")
        before = layer.global_statistics()
        layer.send("conf.stats", {"n": 1})
        layer.send("conf.stats", {"n": 2})
        with pytest.raises(ChannelFull):
            layer.send("conf.stats", {"n": 3})
        after = layer.global_statistics()
        assert after["messages_count"] - before["messages_count"] == 2
        assert after["channel_full_count"] - before["channel_full_count"] == 1
        stats = layer.channel_statistics("conf.stats")
        assert stats["messages_count"] == 2
        assert stats["messages_pending"] == 2
        assert stats["channel_full_count"] == 1
        assert 0 <= stats["messages_max_age"] < 5
        layer.receive(["conf.stats"])
        assert layer.channel_statistics("conf.stats")["messages_pending"] == 1
        empty = layer.channel_statistics("conf.stats.unused")
        assert empty["messages_pending"] == 0 and empty["messages_count"] == 0

    # -- batches: send_batch, receive_batch -------------------------------------

    def test_send_batch_delivers_in_order_per_channel(self):
        layer = self.layer()
        reply = layer.new_channel("conf.batch.reply!")
        items = [("conf.batch.a", {"i": 0}), ("conf.batch.b", {"i": 0}), (reply, {"i": 0}),
                 ("conf.batch.a", {"i": 1}), ("conf.batch.b", {"i": 1}), ("conf.batch.reply!x", {"i": 1}),
                 ("conf.batch.a", {"i": 2})]
        assert layer.send_batch(items) == [None] * len(items)
        assert drain(layer, ["conf.batch.a"]) == [("conf.batch.a", {"i": i}) for i in range(3)]
        assert drain(layer, ["conf.batch.b"]) == [("conf.batch.b", {"i": i}) for i in range(2)]
        assert drain(layer, ["conf.batch.reply!"]) == [(reply, {"i": 0}), ("conf.batch.reply!x", {"i": 1})]
        assert layer.send_batch([]) == []

    def test_send_batch_results_per_item(self):
        layer = self.layer(capacity=2)
        results = layer.send_batch([
            ("conf.batch.full", {"i": 0}),
            ("conf.batch.full", {"i": 1}),
            ("conf.batch.full", {"i": 2}),       # at capacity
            ("conf.batch.other", {"i": 0}),      # other channels still get theirs
            ("conf.batch.big", {"data": b"x" * (1024 * 1024 + 1)}),
            ("conf.batch.odd", {"value": {1, 2}}),
            ("conf.batch.other", {"i": 1}),
        ])
        assert [type(result) for result in results] == [
            type(None), type(None), layer.ChannelFull, type(None), layer.MessageTooLarge, TypeError, type(None),
        ]
        assert [m["i"] for _, m in drain(layer, ["conf.batch.full"])] == [0, 1]
        assert [m["i"] for _, m in drain(layer, ["conf.batch.other"])] == [0, 1]
        assert drain(layer, ["conf.batch.big", "conf.batch.odd"]) == []

    def test_send_batch_refuses_after_a_full_one_on_the_same_channel(self):
        # A reader taking from the full channel between two items must not let a
        # later message overtake the refused one: a retry would come out of order.
        first, second = self.pair(capacity=1, process_capacity=1)
        first.send("conf.batch.full", {"i": 0})
        first.send("conf.batch.proc!a", {"i": 0})
        stop = threading.Event()

        def read():
            while not stop.is_set():
                second.receive(["conf.batch.full", "conf.batch.proc!"])

        results = first.send_batch([("conf.batch.full", {"i": 1}), ("conf.batch.proc!b", {"i": 1})] +
                                  [("conf.batch.full", {"i": n}) for n in range(2, 40)] +
                                  [("conf.batch.proc!c", {"i": n}) for n in range(2, 40)])
        reader = threading.Thread(target=read)
        reader.start()
        try:
            later = first.send_batch([("conf.batch.full", {"i": 1})] + [("conf.batch.full", {"i": n}) for n in range(2, 40)])
        finally:
            stop.set()
            reader.join(10)
        assert all(isinstance(result, ChannelFull) for result in results)
        # Once one item is refused, none after it on that channel is queued.
        queued = [index for index, result in enumerate(later) if result is None]
        assert queued == list(range(len(queued)))

    def test_send_batch_rejects_bad_batches_before_sending(self):
        layer = self.layer()
        for bad in ([("conf.batch.ok", {"n": 1}), ("bad name", {"n": 2})],
                    [("conf.batch.ok", {"n": 1}), ("conf.batch.ok", "not a dict")],
                    [("conf.batch.ok", {"n": 1}), ("conf.batch.ok",)],
                    "conf.batch.ok", {"conf.batch.ok": {"n": 1}}, None):
            with pytest.raises(TypeError):
                layer.send_batch(bad)
        assert layer.receive(["conf.batch.ok"]) == (None, None)

    def test_send_batch_statistics(self):
        layer = self.layer(capacity=2)
        if "statistics" not in layer.extensions:
            pytest.skip("layer has no statistics extension")
        before = layer.global_statistics()
        layer.send_batch([("conf.batch.stats", {"n": n}) for n in range(3)] + [("conf.batch.stats2", {"n": 0})])
        after = layer.global_statistics()
        assert after["messages_count"] - before["messages_count"] == 3
        assert after["channel_full_count"] - before["channel_full_count"] == 1
        stats = layer.channel_statistics("conf.batch.stats")
        assert (stats["messages_count"], stats["messages_pending"], stats["channel_full_count"]) == (2, 2, 1)

    def test_receive_batch_takes_at_most_max_in_order(self):
        layer = self.layer()
        for i in range(5):
            layer.send("conf.many.a", {"i": i})
        for i in range(3):
            layer.send(f"conf.many.proc!{i}", {"i": i})
        got = []
        for _ in range(3):
            batch = layer.receive_batch(["conf.many.a", "conf.many.proc!", "conf.many.none"], 3)
            assert 1 <= len(batch) <= 3
            got.extend(batch)
        assert len(got) == 8
        assert [m["i"] for c, m in got if c == "conf.many.a"] == list(range(5))
        assert [(c, m["i"]) for c, m in got if c != "conf.many.a"] == [(f"conf.many.proc!{i}", i) for i in range(3)]
        assert layer.receive_batch(["conf.many.a", "conf.many.proc!"], 3) == []
        assert layer.receive_batch([], 3) == []

    def test_receive_batch_shares_a_batch_between_busy_and_quiet_channels(self):
        layer = self.layer()
        for i in range(20):
            layer.send("conf.many.busy", {"i": i})
        layer.send("conf.many.quiet", {"i": 0})
        channels = {channel for channel, _ in layer.receive_batch(["conf.many.busy", "conf.many.quiet"], 5)}
        assert channels == {"conf.many.busy", "conf.many.quiet"}

    @pytest.mark.parametrize("bad", [0, -1, 1.5, None, True])
    def test_receive_batch_rejects_bad_max(self, bad):
        layer = self.layer()
        with pytest.raises(ValueError):
            layer.receive_batch(["conf.many"], bad)
        with pytest.raises(TypeError):
            layer.receive_batch(["conf.many!x"], 1)

    def test_receive_batch_blocks_until_one_then_tops_up(self):
        receiver, sender = self.pair(blocking_timeout=5)
        started = threading.Event()
        result: list = []

        def receive():
            started.set()
            result.append(receiver.receive_batch(["conf.many.block", "conf.many.block2"], 10, block=True))
            result.append(time.monotonic())

        thread = threading.Thread(target=receive)
        thread.start()
        started.wait(5)
        time.sleep(0.05)  # let the receiver reach its blocking wait; correctness does not depend on it
        sent_at = time.monotonic()
        sender.send_batch([("conf.many.block2", {"n": n}) for n in range(3)])
        thread.join(5)
        assert not thread.is_alive()
        assert result[1] - sent_at < 2.5  # woken by the send, not by the 5 s timeout
        # At least the first; the rest of the burst if it had landed by the top-up.
        batch = result[0]
        assert 1 <= len(batch) <= 3
        batch += drain(receiver, ["conf.many.block2"])
        assert batch == [("conf.many.block2", {"n": n}) for n in range(3)]

    def test_receive_batch_returns_waiting_messages_at_once_and_times_out(self):
        layer = self.layer(blocking_timeout=0.3)
        layer.send("conf.many.block", {"n": 1})
        assert layer.receive_batch(["conf.many.block"], 5, block=True) == [("conf.many.block", {"n": 1})]
        start = time.monotonic()
        assert layer.receive_batch(["conf.many.block"], 5, block=True) == []
        assert 0.2 <= time.monotonic() - start < 3

    def test_receive_batch_skips_expired(self):
        layer = self.layer(expiry=EXPIRY)
        layer.send_batch([("conf.many.exp", {"n": 1}), ("conf.many.exp", {"n": 2})])
        time.sleep(EXPIRY + 0.3)
        layer.send("conf.many.exp", {"n": 3})
        assert layer.receive_batch(["conf.many.exp"], 5) == [("conf.many.exp", {"n": 3})]

    def test_receive_batch_at_most_once_between_two_receivers(self):
        count = 300
        first, second = self.pair(capacity=count)
        assert first.send_batch([("conf.many.once", {"i": i}) for i in range(count)]) == [None] * count
        got: list[list[int]] = [[], []]

        def consume(layer, into):
            while True:
                batch = layer.receive_batch(["conf.many.once"], 7)
                if not batch:
                    return
                into.extend(message["i"] for _, message in batch)

        threads = [threading.Thread(target=consume, args=(layer, got[n])) for n, layer in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert sorted(got[0] + got[1]) == list(range(count))
        assert got[0] == sorted(got[0]) and got[1] == sorted(got[1])

    # -- send_batch_and_receive ------------------------------------------------

    def test_send_batch_and_receive_sends_first_then_takes_what_waits(self):
        layer = self.layer(capacity=2, blocking_timeout=5)
        layer.send("conf.sr.in", {"n": 1})
        layer.send("conf.sr.in", {"n": 2})
        start = time.monotonic()
        results, received = layer.send_batch_and_receive(
            [("conf.sr.out", {"n": 1}), ("conf.sr.out", {"n": 2}), ("conf.sr.out", {"n": 3}),
             ("conf.sr.proc!a", {"n": 3})],
            ["conf.sr.in", "conf.sr.proc!"], 2)
        assert time.monotonic() - start < 2.5  # it never waited for the 5 s blocking timeout
        assert results[:2] == [None, None] and results[3] is None
        assert isinstance(results[2], layer.ChannelFull)
        # Up to 2 of what waits, the send to a channel it receives from included (the sends went
        # first), each channel's in order; the rest stays queued.
        assert 1 <= len(received) <= 2
        everything = received + drain(layer, ["conf.sr.in", "conf.sr.proc!"])
        assert sorted(m["n"] for _, m in everything) == [1, 2, 3]
        assert [m["n"] for c, m in everything if c == "conf.sr.in"] == [1, 2]
        assert ("conf.sr.proc!a", {"n": 3}) in everything
        assert drain(layer, ["conf.sr.out"]) == [("conf.sr.out", {"n": 1}), ("conf.sr.out", {"n": 2})]

    def test_send_batch_and_receive_never_waits(self):
        layer = self.layer(blocking_timeout=5)
        start = time.monotonic()
        assert layer.send_batch_and_receive([("conf.sr.away", {"n": 1})], ["conf.sr.empty"], 4) == ([None], [])
        assert time.monotonic() - start < 2.5
        assert layer.send_batch_and_receive([], ["conf.sr.away"], 1) == ([], [("conf.sr.away", {"n": 1})])

    def test_send_batch_and_receive_rejects_bad_arguments_before_sending(self):
        layer = self.layer()
        with pytest.raises(ValueError):
            layer.send_batch_and_receive([("conf.sr.bad", {"n": 1})], ["conf.sr.in"], 0)
        with pytest.raises(TypeError):
            layer.send_batch_and_receive([("conf.sr.bad", {"n": 1})], ["conf.sr.in!x"], 1)
        with pytest.raises(TypeError):
            layer.send_batch_and_receive([("conf.sr.bad", "not a dict")], ["conf.sr.in"], 1)
        assert layer.receive(["conf.sr.bad"]) == (None, None)

    def test_send_batch_and_receive_skips_expired(self):
        layer = self.layer(expiry=EXPIRY)
        layer.send("conf.sr.exp", {"n": 1})
        time.sleep(EXPIRY + 0.3)
        layer.send("conf.sr.exp", {"n": 2})
        assert layer.send_batch_and_receive([], ["conf.sr.exp"], 5) == ([], [("conf.sr.exp", {"n": 2})])

    # -- event-loop receives -------------------------------------------------

    def test_receive_async(self):
        layer = self.layer(blocking_timeout=5)
        if "asyncio" not in layer.extensions:
            pytest.skip("layer has no asyncio extension")

        async def main():
            task = asyncio.ensure_future(layer.receive_async(["conf.async"]))
            ticks = 0
            # The loop keeps running while the receive waits.
            while ticks < 5:
                await asyncio.sleep(0.01)
                ticks += 1
            assert not task.done()
            await asyncio.get_running_loop().run_in_executor(None, layer.send, "conf.async", {"a": 1})
            return await asyncio.wait_for(task, 5)

        assert asyncio.run(main()) == ("conf.async", {"a": 1})

    def test_receive_twisted(self):
        layer = self.layer(blocking_timeout=5)
        if "twisted" not in layer.extensions:
            pytest.skip("layer has no twisted extension")
        path, kwargs = self.layer_spec(blocking_timeout=5)
        script = textwrap.dedent(
            """
            import importlib, json, sys, threading
            from twisted.internet import reactor
            module, _, name = sys.argv[1].rpartition(".")
            layer = getattr(importlib.import_module(module), name)(**json.loads(sys.argv[2]))
            result = {}
            ticks = []
            def tick():
                ticks.append(1)
                if len(ticks) < 5:
                    reactor.callLater(0.01, tick)
                else:
                    # The reactor kept running while the receive waited; now send.
                    threading.Thread(target=layer.send, args=("conf.tw", {"t": b"wist"})).start()
            def done(value):
                result["value"] = [value[0], {k: v.decode() for k, v in value[1].items()}]
                reactor.stop()
            def failed(failure):
                result["error"] = str(failure.value)
                reactor.stop()
            def start():
                layer.receive_twisted(["conf.tw"]).addCallbacks(done, failed)
                tick()
            reactor.callWhenRunning(start)
            reactor.callLater(10, reactor.stop)
            reactor.run()
            layer.flush()
            sys.stdout.write(json.dumps(result))
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script, path, json.dumps(kwargs)], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result == {"value": ["conf.tw", {"t": "wist"}]}, result
