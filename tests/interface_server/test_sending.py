"""The sender threads batch queued messages into ``send_batch`` calls without reordering a connection."""

from __future__ import annotations

import threading
import time

import pytest

from asgi_backends.inmemory import ChannelLayer
from interface_server.sending import Job, Sender, split_batch
from tests.support.waiting import wait_until


def job(key, channel, retry_full=False):
    return Job(key, channel, {"key": key, "channel": channel}, None, retry_full)


def test_split_batch_holds_back_what_could_overtake_a_retried_message():
    jobs = [job(1, "websocket.receive", True), job(2, "http.request"), job(1, "websocket.receive", True),
            job(1, "websocket.disconnect"), job(2, "http.disconnect"), job(1, "websocket.receive", True),
            job(3, "websocket.disconnect")]
    now, later = split_batch(jobs)
    # Connection 1 may send more frames in the batch, but its disconnect (another
    # channel) and everything after it wait for the next batch.
    assert now == [jobs[0], jobs[1], jobs[2], jobs[4], jobs[6]]
    assert later == [jobs[3], jobs[5]]
    assert split_batch(later) == ([jobs[3], jobs[5]], [])


class Reactor:
    """Runs ``callFromThread`` callbacks at once, in the sender thread, recording them."""

    def __init__(self):
        self.calls = []

    def callFromThread(self, function, *args):
        self.calls.append(args)
        function(*args)


def test_sender_batches_keeps_order_and_retries_full_channels():
    layer = ChannelLayer(capacity=3)
    calls = []
    send_batch = layer.send_batch

    def counting_send_batch(items):
        calls.append(len(items))
        return send_batch(items)

    layer.send_batch = counting_send_batch
    errors = []
    sender = Sender(layer, Reactor(), threads=1, full_retry=2.0)
    for n in range(3):
        layer.send("frames", {"n": -1 - n})  # full before the sender starts
    for n in range(10):
        sender.send(7, "frames", {"n": n}, errors.append, retry_full=True)
    sender.send(7, "goodbye", {"n": "bye"}, errors.append)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 13 and time.monotonic() < deadline:
        channel, message = layer.receive(["frames"], block=True)
        if channel is not None:
            got.append(message["n"])
    assert got == [-1, -2, -3, *range(10)]
    assert layer.receive(["goodbye"], block=True) == ("goodbye", {"n": "bye"})
    sender.close()
    assert errors == []
    assert sum(calls) >= 11 and len(calls) < 11 + 10  # batched, retries included


def test_sender_reports_a_channel_that_stays_full():
    layer = ChannelLayer(capacity=1)
    layer.send("frames", {"n": 0})
    failed = threading.Event()
    errors = []

    def on_error(exc):
        errors.append(exc)
        failed.set()

    sender = Sender(layer, Reactor(), threads=1, full_retry=0.2)
    sender.send(1, "frames", {"n": 1}, on_error, retry_full=True)
    assert failed.wait(5)
    assert isinstance(errors[0], layer.ChannelFull)
    sender.close()


def test_sender_with_no_full_retry_reports_the_first_refusal():
    layer = ChannelLayer(capacity=1)
    layer.send("frames", {"n": 0})
    calls = []
    send_batch = layer.send_batch

    def counting_send_batch(items):
        calls.append(len(items))
        return send_batch(items)

    layer.send_batch = counting_send_batch
    failed = threading.Event()
    errors = []

    def on_error(exc):
        errors.append(exc)
        failed.set()

    sender = Sender(layer, Reactor(), threads=1, full_retry=0)
    sender.send(1, "frames", {"n": 1}, on_error, retry_full=True)
    assert failed.wait(5)
    sender.close()
    assert isinstance(errors[0], layer.ChannelFull) and calls == [1]  # no retry
    with pytest.raises(ValueError, match="full_retry"):
        Sender(layer, Reactor(), threads=0, full_retry=-1)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    from asgi_backends.exceptions import LayerUnavailable

    layer = ChannelLayer()
    send_batch = layer.send_batch
    down = threading.Event()
    down.set()

    def flaky_send_batch(items):
        if down.is_set():
            raise LayerUnavailable("Redis at test is unreachable")
        return send_batch(items)

    layer.send_batch = flaky_send_batch
    errors = []
    sender = Sender(layer, Reactor(), threads=1)
    with caplog.at_level("DEBUG", logger="interface_server"):
        for n in range(20):
            sender.send(n, "websocket.disconnect", {"n": n})  # no on_error: the sender's own line
            sender.send(n, "http.request", {"n": n}, errors.append)
        wait_until(lambda: len(errors) >= 20, 10, what="the sender thread to report 20 failures")
        down.clear()
        sender.send(99, "http.request", {"n": 99}, errors.append)
        assert layer.receive(["http.request"], block=True) == ("http.request", {"n": 99})
        sender.close()
    assert len(errors) == 20 and all(isinstance(e, LayerUnavailable) for e in errors)
    lines = [r.getMessage() for r in caplog.records if r.levelname != "DEBUG"]
    assert len(lines) == 2, lines  # not one per message
    assert lines[0].startswith("Talking to the channel layer failed: Redis at test is unreachable; HTTP requests get 503")
    assert lines[1].startswith("Talking to the channel layer works again after")


class TurnReactor(Reactor):
    """Also runs ``callLater(0, ...)`` calls when the test says a reactor turn ends."""

    def __init__(self):
        super().__init__()
        self.later = []

    def callLater(self, delay, function, *args):
        self.later.append((function, args))

    def end_turn(self):
        later, self.later = self.later, []
        for function, args in later:
            function(*args)


def test_a_turn_goes_to_one_thread_and_a_retrying_thread_holds_up_only_its_connections():
    layer = ChannelLayer(capacity=2)
    threads_used = []
    send_batch = layer.send_batch

    def recording_send_batch(items):
        threads_used.append((threading.current_thread().name, [message["key"] for _, message in items]))
        return send_batch(items)

    layer.send_batch = recording_send_batch
    reactor = TurnReactor()
    sender = Sender(layer, reactor, threads=2, full_retry=5.0)
    for key in range(6):
        sender.send(key, f"plain{key}", {"key": key})
    reactor.end_turn()
    wait_until(lambda: threads_used, 5, what="the sender thread's first batch")
    assert threads_used == [("layer-sender-0", [0, 1, 2, 3, 4, 5])]  # one thread, one batch

    # Connection 1 fills "full" and its thread retries; later turns go to the other thread,
    # except connection 1's own messages, which wait behind its retried one.
    for n in range(2):
        layer.send("full", {"key": -1})
    sender.send(1, "full", {"key": 1}, retry_full=True)
    reactor.end_turn()
    wait_until(lambda: sender._retrying[0], 5, what="thread 0 to retry the full channel")
    assert sender._retrying[0]
    sender.send(2, "plain2", {"key": 2, "n": 2})
    sender.send(1, "after", {"key": 1, "n": 2})
    reactor.end_turn()
    assert layer.receive(["plain2"], block=True)[1] == {"key": 2}
    assert layer.receive(["plain2"], block=True)[1] == {"key": 2, "n": 2}  # not held up by the retry
    assert layer.receive(["after"]) == (None, None)  # behind connection 1's retried message
    assert layer.receive(["full"])[1] == {"key": -1}  # room: the retry gets through
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        channel, message = layer.receive(["full", "after"], block=True)
        if channel is not None:
            got.append((channel, message))
    assert sorted(got, key=repr) == [("after", {"key": 1, "n": 2}), ("full", {"key": -1}), ("full", {"key": 1})]
    sender.close()
