"""The outbox flushes a consumer's held sends in batches (``send_batch``), keeping their order."""

from __future__ import annotations

import threading

import pytest

from channels.channel import Channel, Group
from channels.outbox import Outbox
from worker.fetch import Fetch
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


class RecordingFetch(Fetch):
    """A worker's fetch that notes which sends carried it."""

    def __init__(self, *args):
        super().__init__(*args)
        self.carried = []

    def send_batch(self, layer, items):
        results = super().send_batch(layer, items)
        if results is not None:
            self.carried.append([message["n"] for _, message in items])
        return results


def test_the_last_channel_sends_carry_the_workers_next_receive(layer):
    layer.send("outbox.jobs", {"n": "next"})
    outbox = Outbox()
    outbox.begin()
    outbox.add(Channel("outbox.a", channel_layer=layer), {"n": 0})
    outbox.add(Group("outbox-group", channel_layer=layer), {"n": "group"})
    outbox.add(Channel("outbox.a", channel_layer=layer), {"n": 1})
    outbox.add(Channel("outbox.b", channel_layer=layer), {"n": 2})
    fetch = RecordingFetch(layer, ["outbox.jobs"], 2)
    outbox.flush(fetch=fetch)
    assert fetch.carried == [[1, 2]]
    assert fetch.received == [("outbox.jobs", {"n": "next"})]
    assert [m["n"] for m in drain(layer, "outbox.a")] == [0, 1]
    assert [m["n"] for m in drain(layer, "outbox.b")] == [2]


def test_a_fetch_goes_unused_when_a_group_send_is_last_or_another_layer_is_sent_to(layer):
    from asgi_backends.inmemory import ChannelLayer

    other = ChannelLayer()
    for last in (Group("outbox-group", channel_layer=layer), Channel("outbox.c", channel_layer=other)):
        outbox = Outbox()
        outbox.begin()
        outbox.add(Channel("outbox.a", channel_layer=layer), {"n": 0})
        outbox.add(last, {"n": 1})
        fetch = RecordingFetch(layer, ["outbox.jobs"], 1)
        outbox.flush(fetch=fetch)
        assert fetch.carried == [] and fetch.received is None
        assert [m["n"] for m in drain(layer, "outbox.a")] == [0]
    assert [m["n"] for m in drain(other, "outbox.c")] == [1]


def test_a_full_channel_met_with_the_fetch_is_retried_until_it_drains():
    from asgi_backends.inmemory import ChannelLayer

    small = ChannelLayer(capacity=1)
    small.send("outbox.full", {"n": 0})
    outbox = Outbox()
    outbox.begin()
    outbox.add(Channel("outbox.full", channel_layer=small), {"n": 1})
    fetch = RecordingFetch(small, ["outbox.jobs"], 1)
    reader = threading.Thread(target=lambda: (
        wait_until(lambda: small.channel_statistics("outbox.full")["channel_full_count"], what="a refused send"),
        small.receive(["outbox.full"])))
    reader.start()
    outbox.flush(fetch=fetch)
    reader.join(10)
    assert fetch.carried == [[1]] and fetch.received == []
    assert drain(small, "outbox.full") == [{"n": 1}]
