"""The sender threads batch queued messages into ``send_batch`` calls without reordering a connection."""

from __future__ import annotations

import threading
import time

import pytest

from asgi_backends.inmemory import ChannelLayer
from interface_server.sending import Job, Sender, split_batch


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
        deadline = time.monotonic() + 10
        while len(errors) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)  # the sender thread reports through the test reactor
        down.clear()
        sender.send(99, "http.request", {"n": 99}, errors.append)
        assert layer.receive(["http.request"], block=True) == ("http.request", {"n": 99})
        sender.close()
    assert len(errors) == 20 and all(isinstance(e, LayerUnavailable) for e in errors)
    lines = [r.getMessage() for r in caplog.records if r.levelname != "DEBUG"]
    assert len(lines) == 2, lines  # not one per message
    assert lines[0].startswith("Talking to the channel layer failed: Redis at test is unreachable; HTTP requests get 503")
    assert lines[1].startswith("Talking to the channel layer works again after")
