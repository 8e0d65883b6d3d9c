"""The outbox flushes a consumer's held sends in batches (``send_batch``), keeping their order."""

from __future__ import annotations

import threading

import pytest

from channels.channel import Channel, Group
from channels.outbox import Outbox
from tests.support.waiting import wait_until

from .helpers import drain


class CountingLayer:
    """Wraps a real layer, counting the calls the outbox makes (so a test can see the batching)."""

    def __init__(self, layer):
        self.layer = layer
        self.calls: list[str] = []
        self.ChannelFull = layer.ChannelFull

    def __getattr__(self, name):
        method = getattr(self.layer, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


def test_flush_sends_consecutive_channel_sends_in_one_batch_and_groups_in_place(layer):
    counting = CountingLayer(layer)
    Group("outbox-group", channel_layer=layer).add("outbox.member")
    outbox = Outbox()
    outbox.begin()
    for n in range(3):
        outbox.add(Channel("outbox.a", channel_layer=counting), {"n": n})
    outbox.add(Group("outbox-group", channel_layer=counting), {"n": "group"})
    outbox.add(Channel("outbox.b", channel_layer=counting), {"n": 3})
    outbox.add(Channel("outbox.a", channel_layer=counting), {"n": 4})
    outbox.flush(first=[(Channel("outbox.b", channel_layer=counting), {"n": "first"})])
    assert counting.calls == ["send_batch", "send_group", "send_batch"]
    assert [m["n"] for m in drain(layer, "outbox.a")] == [0, 1, 2, 4]
    assert [m["n"] for m in drain(layer, "outbox.b")] == ["first", 3]
    assert [m["n"] for m in drain(layer, "outbox.member")] == ["group"]


def test_flush_retries_a_full_channel_in_order_until_it_drains():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(capacity=2)
    small.send("outbox.full", {"n": -1})
    small.send("outbox.full", {"n": 0})
    outbox = Outbox()
    outbox.begin()
    for n in range(1, 4):
        outbox.add(Channel("outbox.full", channel_layer=small), {"n": n})
    outbox.add(Channel("outbox.other", channel_layer=small), {"n": "other"})
    got = []

    def read():  # a reader that frees room once the flush has met the full channel
        wait_until(lambda: small.channel_statistics("outbox.full")["channel_full_count"], what="a refused send")
        while len(got) < 5:
            channel, message = small.receive(["outbox.full"], block=True)
            if channel is not None:
                got.append(message["n"])

    reader = threading.Thread(target=read)
    reader.start()
    outbox.flush()
    reader.join(10)
    assert got == [-1, 0, 1, 2, 3]
    assert small.channel_statistics("outbox.full")["channel_full_count"] >= 1
    assert [m["n"] for m in drain(small, "outbox.other")] == ["other"]


def test_flush_gives_up_on_a_channel_that_stays_full():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(capacity=1)
    small.send("outbox.full", {"n": 0})
    outbox = Outbox()
    outbox.retry_time = 0.2
    outbox.begin()
    ran = []
    outbox.after_flush(lambda: ran.append(True))
    outbox.add(Channel("outbox.full", channel_layer=small), {"n": 1})
    outbox.add(Channel("outbox.other", channel_layer=small), {"n": 2})
    with pytest.raises(RuntimeError, match="stayed full"):
        outbox.flush()
    assert ran == [True]
    assert [m["n"] for m in drain(small, "outbox.full")] == [0]
    assert [m["n"] for m in drain(small, "outbox.other")] == [2]


def test_a_lone_held_send_is_retried_until_its_channel_drains():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(capacity=1)
    small.send("outbox.full", {"n": 0})
    outbox = Outbox()
    outbox.begin()
    outbox.add(Channel("outbox.full", channel_layer=small), {"n": 1})  # alone: a plain send, not a batch
    got = []

    def read():
        wait_until(lambda: small.channel_statistics("outbox.full")["channel_full_count"], what="a refused send")
        while len(got) < 2:
            channel, message = small.receive(["outbox.full"], block=True)
            if channel is not None:
                got.append(message["n"])

    reader = threading.Thread(target=read)
    reader.start()
    outbox.flush()
    reader.join(10)
    assert got == [0, 1]


def test_a_lone_held_send_gives_up_after_retry_time():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(capacity=1)
    small.send("outbox.full", {"n": 0})
    outbox = Outbox()
    outbox.retry_time = 0  # one try only
    outbox.begin()
    outbox.add(Channel("outbox.full", channel_layer=small), {"n": 1})
    with pytest.raises(RuntimeError, match="stayed full for 0s"):
        outbox.flush()
    assert small.channel_statistics("outbox.full")["channel_full_count"] == 1
