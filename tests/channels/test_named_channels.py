"""Consumers of named channels (ChannelNameRouter): one instance per channel name per worker process, in order.

As Channels 4's ``runworker``: the first message of a channel makes its
instance, later ones reuse it (attributes stay on it, packable or not), an
instance that raises or stops is replaced, and the worker gives each named
channel one thread that alone receives from it.
"""

from __future__ import annotations

import logging
import threading

import pytest
from asgiref.sync import async_to_sync

from asgi_backends.inmemory import ChannelLayer
from channels import channel_layers
from channels.asgi import ChannelLayerWrapper
from channels.consumer import AsyncConsumer, SyncConsumer
from channels.exceptions import StopConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.worker import ChannelsHooks, Worker
from tests.support.waiting import wait_until


class Counter(SyncConsumer):
    """Counts on itself; keeps something msgpack could never carry."""

    seen: list = []

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = 0
        self.lock = threading.Lock()
        Counter.made += 1

    made = 0

    def job_run(self, event):
        self.count += 1
        Counter.seen.append((id(self), self.count, event["n"], threading.current_thread().name))
        if event.get("fail"):
            raise RuntimeError("job failed on purpose")
        if event.get("stop"):
            raise StopConsumer()


class AsyncTally(AsyncConsumer):
    seen: list = []

    async def job_run(self, event):
        self.total = getattr(self, "total", 0) + event["n"]
        AsyncTally.seen.append((id(self), self.total))


class Blocker(SyncConsumer):
    """Holds its thread until released: shows who else gets to run meanwhile."""

    entered = threading.Event()
    release = threading.Event()

    def job_run(self, event):
        Blocker.entered.set()
        Blocker.release.wait(10)


class SendsOut(SyncConsumer):
    """Calls the layer through async_to_sync: runs beside the channel's loop, in the channel's own thread."""

    def job_run(self, event):
        async_to_sync(self.channel_layer.send)("results", {"type": "done", "n": event["n"], "me": self.channel_name})


application = ProtocolTypeRouter({
    "websocket": URLRouter([]),
    "channel": ChannelNameRouter({
        "counter": Counter.as_asgi(),
        "other-counter": Counter.as_asgi(),
        "tally": AsyncTally.as_asgi(),
        "blocker": Blocker.as_asgi(),
        "sends-out": SendsOut.as_asgi(),
    }),
})


@pytest.fixture
def layer():
    wrapper = ChannelLayerWrapper(ChannelLayer(blocking_timeout=1.0), "default", [], application)
    Counter.seen, Counter.made, AsyncTally.seen = [], 0, []
    with channel_layers.override("default", wrapper):
        yield wrapper


def handle(worker, channel, n, **extra):
    worker.handle(channel, {"type": "job.run", "n": n, **extra})


def test_one_instance_per_channel_keeps_its_attributes_between_messages(layer):
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    for n in range(3):
        handle(worker, "counter", n)
    handle(worker, "other-counter", 9)
    ids = [entry[0] for entry in Counter.seen]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # one instance per channel name
    assert [entry[1] for entry in Counter.seen] == [1, 2, 3, 1]  # its count grew: nothing was packed
    assert Counter.made == 2
    [kept] = layer.router._app_consumer.named.instances("counter")
    assert isinstance(kept.lock, type(threading.Lock()))  # not msgpack-serialisable, and kept all the same


def test_async_consumer_instance_is_kept_too(layer):
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    for n in (1, 2, 3):
        handle(worker, "tally", n)
    assert [total for _, total in AsyncTally.seen] == [1, 3, 6]
    assert len({ident for ident, _ in AsyncTally.seen}) == 1


def test_an_instance_that_raises_is_replaced_and_the_worker_carries_on(layer, caplog):
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    handle(worker, "counter", 0)
    with caplog.at_level(logging.ERROR, logger="channels.turns"):
        handle(worker, "counter", 1, fail=True)
    handle(worker, "counter", 2)
    assert [entry[1] for entry in Counter.seen] == [1, 2, 1]  # a new instance after the failure
    assert Counter.made == 2
    message = next(r.getMessage() for r in caplog.records if "raised" in r.getMessage())
    assert message == "Counter.job_run raised handling job.run; channel counter gets a new instance for its next message"


def test_an_instance_that_stops_is_replaced(layer):
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    handle(worker, "counter", 0, stop=True)
    handle(worker, "counter", 1)
    assert [entry[1] for entry in Counter.seen] == [1, 1] and Counter.made == 2


def test_each_named_channel_has_one_thread_of_its_own_that_runs_its_messages_in_order(layer):
    worker = Worker(layer, hooks=ChannelsHooks(), threads=4, signal_handlers=False)
    assert worker.ordered_channels == ["blocker", "counter", "other-counter", "sends-out", "tally"]
    worker.start()
    try:
        for n in range(40):
            layer.send("counter", {"type": "job.run", "n": n})
        wait_until(lambda: len(Counter.seen) == 40, what="40 counter messages handled")
    finally:
        worker.stop()
        assert worker.join(5)
    assert [entry[2] for entry in Counter.seen] == list(range(40))
    assert {entry[3] for entry in Counter.seen} == {"worker-counter"}  # never one of the four shared threads
    assert [entry[1] for entry in Counter.seen] == list(range(1, 41))


def test_a_busy_named_channel_holds_up_neither_the_other_channels_nor_the_rest(layer):
    Blocker.entered.clear()
    Blocker.release.clear()
    worker = Worker(layer, hooks=ChannelsHooks(), threads=1, signal_handlers=False)
    worker.start()
    try:
        layer.send("blocker", {"type": "job.run", "n": 0})
        assert Blocker.entered.wait(5)
        layer.send("counter", {"type": "job.run", "n": 1})
        wait_until(lambda: Counter.seen, what="the counter handled while the blocker holds its thread")
    finally:
        Blocker.release.set()
        worker.stop()
        assert worker.join(5)


def test_async_to_sync_in_a_named_sync_consumer(layer):
    worker = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    for n in (1, 2):
        handle(worker, "sends-out", n)
    results = [layer.receive(["results"])[1] for _ in range(2)]
    assert results == [{"type": "done", "n": 1, "me": "sends-out"}, {"type": "done", "n": 2, "me": "sends-out"}]


def test_each_process_has_its_own_instances(layer):
    """N workers make N instances: two routers (as two processes have) do not share one."""
    other = ChannelLayerWrapper(layer.channel_layer, "default", [], application)
    first = Worker(layer, hooks=ChannelsHooks(), signal_handlers=False)
    second = Worker(other, hooks=ChannelsHooks(), signal_handlers=False)
    handle(first, "counter", 0)
    handle(second, "counter", 1)
    handle(first, "counter", 2)
    assert [entry[1] for entry in Counter.seen] == [1, 1, 2] and Counter.made == 2
