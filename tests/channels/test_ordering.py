"""enforce_ordering: parked out-of-order messages, released in turn, never lost or run twice."""

from __future__ import annotations

import random
import threading

import pytest

from channels.routing import Router, route
from channels.sessions import channel_session, enforce_ordering
from channels.worker import Worker
from tests.channels.helpers import message
from tests.support.waiting import wait_until


class Recorder:
    """Records (reply channel, order) runs and counts every entry into the decorated stack."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, int]] = []
        self.entries = 0

    def record(self, message):
        with self.lock:
            self.runs.append((message.reply_channel.name, message.content["order"]))

    def counting(self, consumer):
        def outer(message, **kwargs):
            with self.lock:
                self.entries += 1
            return consumer(message, **kwargs)
        return outer

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        def done() -> bool:
            with self.lock:
                return len(self.runs) >= count

        try:
            wait_until(done, timeout, interval=0.005)
        except AssertionError:
            raise AssertionError(f"only {len(self.runs)} of {count} runs after {timeout}s: {self.runs}") from None


def make_worker(layer, recorder, slight, threads=4):
    @enforce_ordering(slight=slight)
    @channel_session
    def consumer(message):
        if message.content.get("fail"):
            recorder.record(message)
            raise RuntimeError("failed on purpose")
        recorder.record(message)

    wrapped = recorder.counting(consumer)
    layer.router = Router([
        route("websocket.connect", wrapped),
        route("websocket.receive", wrapped),
        route("websocket.disconnect", wrapped),
    ])
    worker = Worker(layer, threads=threads, signal_handlers=False)
    worker.start()
    return worker


def send(layer, reply, order, **extra):
    channel = "websocket.connect" if order == 0 else "websocket.receive"
    layer.send(channel, {"reply_channel": reply, "path": "/", "order": order, "text": str(order), **extra})


@pytest.fixture
def recorder():
    return Recorder()


def test_strict_runs_reversed_messages_in_order(layer, recorder):
    worker = make_worker(layer, recorder, slight=False, threads=2)
    try:
        for order in (3, 2, 1):
            send(layer, "ws!a", order)
        # Nothing can run before 0 arrives; wait until all three are parked.
        wait_until(lambda: recorder.entries >= 3, what="three parked messages")
        assert recorder.runs == []
        send(layer, "ws!a", 0)
        recorder.wait_for(4)
        assert recorder.runs == [("ws!a", 0), ("ws!a", 1), ("ws!a", 2), ("ws!a", 3)]
    finally:
        worker.stop()
        worker.join(5)


def test_slight_parks_until_connect_without_spinning(layer, recorder):
    worker = make_worker(layer, recorder, slight=True, threads=3)
    try:
        for order in (1, 2, 3):
            send(layer, "ws!b", order)
        wait_until(lambda: recorder.entries >= 3, what="three parked messages")
        assert recorder.entries == 3 and recorder.runs == []
        send(layer, "ws!b", 0)
        recorder.wait_for(4)
        assert recorder.runs[0] == ("ws!b", 0)
        assert sorted(order for _, order in recorder.runs) == [0, 1, 2, 3]
        # 3 parkings + connect + 3 released runs: no message was picked up in a loop.
        assert recorder.entries == 7
    finally:
        worker.stop()
        worker.join(5)


@pytest.mark.parametrize("slight", [False, True])
def test_many_connections_shuffled_each_message_runs_once(layer, recorder, slight):
    worker = make_worker(layer, recorder, slight=slight, threads=4)
    try:
        messages = [(f"ws!c{n}", order) for n in range(12) for order in range(6)]
        random.Random(4).shuffle(messages)
        for reply, order in messages:
            send(layer, reply, order)
        recorder.wait_for(len(messages))
        worker.stop()
        assert worker.join(5)  # every thread idle: a duplicate run would be recorded by now
        assert sorted(recorder.runs) == sorted(messages)
        for n in range(12):
            orders = [order for reply, order in recorder.runs if reply == f"ws!c{n}"]
            assert orders[0] == 0
            if not slight:
                assert orders == list(range(6))
    finally:
        worker.stop()
        worker.join(5)


def test_a_failing_message_still_lets_the_next_run(layer, recorder):
    worker = make_worker(layer, recorder, slight=False, threads=2)
    try:
        send(layer, "ws!d", 2)
        send(layer, "ws!d", 1, fail=True)
        send(layer, "ws!d", 0)
        recorder.wait_for(3)
        assert recorder.runs == [("ws!d", 0), ("ws!d", 1), ("ws!d", 2)]
    finally:
        worker.stop()
        worker.join(5)


def test_duplicates_are_dropped_and_missing_order_is_an_error(layer, recorder):
    runs = []

    @enforce_ordering
    def consumer(message):
        runs.append(message["order"])

    consumer(message(layer, "websocket.connect", reply_channel="ws!e", order=0))
    consumer(message(layer, "websocket.connect", reply_channel="ws!e", order=0))
    consumer(message(layer, "websocket.receive", reply_channel="ws!e", order=1))
    assert runs == [0, 1]
    with pytest.raises(ValueError, match="'order'"):
        consumer(message(layer, "websocket.receive", reply_channel="ws!e"))


def test_release_waits_for_room_on_a_full_channel_instead_of_losing_the_message(layer):
    from channels.ordering import release, wait_channel_name

    small = type(layer.channel_layer)(channel_capacity={"websocket.receive": 1})
    small.send("websocket.receive", {"filler": True})
    reply = "websocket.send!full"
    small.send(wait_channel_name(reply, 2), {"channel": "websocket.receive", "content": {"order": 2}})
    got = []

    def read():  # frees room once the release has met the full channel
        wait_until(lambda: small.channel_statistics("websocket.receive")["channel_full_count"], what="a refused send")
        while len(got) < 2:
            channel, content = small.receive(["websocket.receive"], block=True)
            if channel is not None:
                got.append(content)

    reader = threading.Thread(target=read)
    reader.start()
    assert release(message(small, "websocket.receive", reply_channel=reply, order=1), 2) == 1
    reader.join(10)
    assert got == [{"filler": True}, {"order": 2}]


def test_a_channel_that_stays_full_is_given_up_on_after_the_retry_policy(layer, monkeypatch, caplog):
    from asgi_backends.retry import RetryPolicy
    from channels import ordering

    monkeypatch.setattr(ordering, "FULL_RETRY", RetryPolicy(timeout=0.05))
    small = type(layer.channel_layer)(capacity=1)
    reply = "websocket.send!stuck"
    small.send("websocket.receive", {"filler": True})
    small.send(ordering.wait_channel_name(reply, 2), {"channel": "websocket.receive", "content": {"order": 2}})
    with caplog.at_level("ERROR", logger="channels.ordering"):
        assert ordering.release(message(small, "websocket.receive", reply_channel=reply, order=1), 2) == 0
    assert "stayed full for 0.05s; it is lost" in caplog.text
    assert small.channel_statistics("websocket.receive")["channel_full_count"] > 1  # retried first
    # Parking on a wait channel that stays full raises ChannelFull, after retrying too.
    small.send(ordering.wait_channel_name(reply, 3), {"channel": "websocket.receive", "content": {"order": 3}})
    with pytest.raises(small.ChannelFull, match="stayed full"):
        ordering._park(message(small, "websocket.receive", reply_channel=reply, order=3), ordering._Policy(False), 3)
    assert small.channel_statistics(ordering.wait_channel_name(reply, 3))["channel_full_count"] > 1
