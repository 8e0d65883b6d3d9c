"""The worker on its own (no Django): routing, failures, retries, threads, shutdown."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from asgi_backends.inmemory import ChannelLayer
from tests.support import waiting
from worker import ConsumeLater, Worker, WorkerHooks
from worker.fetch import current_fetch
from worker.requeue import Requeuer, retry_delay
from worker.worker import filter_channels


class TableRouter:
    """The smallest router: channel name -> consumer."""

    def __init__(self, table):
        self.table = table
        self.channels = set(table)

    def match(self, message):
        consumer = self.table.get(message.channel_name)
        return None if consumer is None else (consumer, {})


def wait_until(predicate, timeout=5.0):
    return waiting.wait_until(predicate, timeout, interval=0.002)


@pytest.fixture
def layer():
    return ChannelLayer(blocking_timeout=5.0)


def running(layer, table, **kwargs):
    worker = Worker(layer, TableRouter(table), signal_handlers=False, **kwargs)
    worker.start()
    return worker


def test_filters():
    names = {"http.request", "websocket.connect", "websocket.receive", "chat-messages"}
    assert filter_channels(names, only=["websocket.*"]) == ["websocket.connect", "websocket.receive"]
    assert filter_channels(names, exclude=["websocket.*", "http.*"]) == ["chat-messages"]
    with pytest.raises(ValueError, match="No channels to listen on"):
        Worker(ChannelLayer(), TableRouter({"a": print}), only_channels=["b*"])
    with pytest.raises(ValueError, match="threads"):
        Worker(ChannelLayer(), TableRouter({"a": print}), threads=0)


def test_runs_consumers_on_routed_channels_only(layer):
    seen = []
    worker = running(layer, {"jobs": lambda m: seen.append(m["n"])}, only_channels=["jobs"])
    try:
        for n in range(5):
            layer.send("jobs", {"n": n})
        layer.send("other", {"n": 99})
        wait_until(lambda: len(seen) == 5)
        assert sorted(seen) == [0, 1, 2, 3, 4]
        assert layer.receive(["other"]) == ("other", {"n": 99})
    finally:
        worker.stop()
        assert worker.join(5)


def test_exception_is_logged_and_worker_goes_on_and_http_gets_500(layer, caplog):
    seen = []

    def flaky(message):
        if message["n"] == 0:
            raise KeyError("bad input")
        seen.append(message["n"])

    worker = running(layer, {"http.request": flaky})
    try:
        with caplog.at_level(logging.ERROR, logger="worker"):
            layer.send("http.request", {"n": 0, "reply_channel": "http.response!a1b2c3d4e5f6"})
            layer.send("http.request", {"n": 1, "reply_channel": "http.response!b"})
            channel, reply = layer.receive(["http.response!"], block=True)
            wait_until(lambda: seen == [1])
        assert channel == "http.response!a1b2c3d4e5f6" and reply["status"] == 500
        record = next(r for r in caplog.records if "raised" in r.getMessage())
        # The reply channel is a capability: named, never whole.
        assert "http.request" in record.getMessage() and "http.response!a1b2" in record.getMessage()
        assert "a1b2c3d4e5f6" not in caplog.text
        assert "KeyError" in caplog.text  # the traceback
    finally:
        worker.stop()
        worker.join(5)


def test_a_consumer_the_layer_failed_under_logs_the_outage_not_a_traceback_and_sends_no_500(layer, caplog):
    from asgi_backends.exceptions import LayerUnavailable

    seen = []

    def sending(message):
        seen.append(message["n"])
        if message["n"] == 0:
            raise LayerUnavailable("Redis at test is unreachable")

    worker = running(layer, {"http.request": sending})
    try:
        with caplog.at_level(logging.DEBUG, logger="worker"):
            for n in range(2):
                layer.send("http.request", {"n": n, "reply_channel": f"http.response!{n}"})
            wait_until(lambda: seen == [0, 1])
            wait_until(lambda: sum(r.levelno >= logging.WARNING for r in caplog.records) == 2)
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert lines[0].startswith("Talking to the channel layer failed: Redis at test is unreachable")
        assert lines[1].startswith("Talking to the channel layer works again")  # the next receive worked
        assert "Traceback" not in caplog.text
        assert layer.receive(["http.response!"]) == (None, None)  # no 500 attempted
    finally:
        worker.stop()
        worker.join(5)


def test_consume_later_retries_with_growing_delay_then_drops(layer, caplog):
    times = []

    def never(message):
        times.append(time.monotonic())
        raise ConsumeLater()

    worker = running(layer, {"later": never}, message_retries=4)
    try:
        with caplog.at_level(logging.WARNING, logger="worker"):
            layer.send("later", {"x": 1})
            wait_until(lambda: "after 4 ConsumeLater retries" in caplog.text)
        assert len(times) == 5  # first try + 4 retries, then dropped: no spinning
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(gap >= retry_delay(i + 1) * 0.9 for i, gap in enumerate(gaps))
    finally:
        worker.stop()
        worker.join(5)
    assert retry_delay(1) < retry_delay(3) <= retry_delay(50) == 1.0


def test_requeued_message_meeting_a_full_channel_is_retried_until_room_is_made():
    layer = ChannelLayer(capacity=1)
    layer.send("busy", {"filler": True})
    requeuer = Requeuer(layer, full_retries=50)
    try:
        requeuer.schedule("busy", {"n": 1}, 0)
        wait_until(lambda: layer.channel_statistics("busy")["channel_full_count"] >= 2)  # retried, not dropped
        assert layer.receive(["busy"]) == ("busy", {"filler": True})
        wait_until(lambda: layer.channel_statistics("busy")["messages_count"] == 2)
        assert layer.receive(["busy"]) == ("busy", {"n": 1})
    finally:
        requeuer.close(flush=False)


def test_requeued_message_is_dropped_after_full_retries(caplog):
    layer = ChannelLayer(capacity=1)
    layer.send("busy", {"filler": True})
    requeuer = Requeuer(layer, full_retries=2)
    try:
        with caplog.at_level(logging.WARNING, logger="worker.requeue"):
            requeuer.schedule("busy", {"n": 1}, 0)
            wait_until(lambda: "stayed full" in caplog.text)
        assert layer.channel_statistics("busy")["channel_full_count"] == 3  # the try and 2 retries
        assert requeuer.pending() == 0
    finally:
        requeuer.close(flush=False)


def test_thread_pool_runs_consumers_concurrently(layer):
    inside = threading.Semaphore(0)
    release = threading.Event()

    def blocking(message):
        inside.release()
        release.wait(5)

    worker = running(layer, {"slow": blocking}, threads=3)
    try:
        for _ in range(3):
            layer.send("slow", {})
        for _ in range(3):
            assert inside.acquire(timeout=5)  # three consumers are in flight at once
    finally:
        release.set()
        worker.stop()
        assert worker.join(5)


def test_stop_wakes_idle_threads_at_once(layer):
    worker = running(layer, {"idle": print}, threads=4)
    started = time.monotonic()
    worker.stop()
    assert worker.join(4)
    assert time.monotonic() - started < layer.blocking_timeout  # not waiting out the blocking receive


def test_router_errors_and_unrouted_messages_do_not_stop_the_worker(layer, caplog):
    class Broken(TableRouter):
        def match(self, message):
            if message.get("explode"):
                raise RuntimeError("router broke")
            return super().match(message)

    seen = []
    worker = Worker(layer, Broken({"a": lambda m: seen.append(1)}), signal_handlers=False)
    worker.start()
    try:
        with caplog.at_level(logging.ERROR, logger="worker"):
            layer.send("a", {"explode": True})
            layer.send("a", {})
            wait_until(lambda: seen == [1])
        assert "Could not route" in caplog.text
    finally:
        worker.stop()
        worker.join(5)


def test_hooks_wrap_calls(layer):
    events = []

    class Hooks(WorkerHooks):
        def ready(self, worker):
            events.append("ready")

        def call(self, consumer, message, kwargs):
            events.append("before")
            consumer(message, **kwargs)
            events.append("after")

    worker = Worker(layer, TableRouter({"h": lambda m: events.append("run")}), Hooks(), signal_handlers=False)
    worker.start()
    try:
        layer.send("h", {})
        wait_until(lambda: "after" in events)
        assert events == ["ready", "before", "run", "after"]
    finally:
        worker.stop()
        worker.join(5)


SCRIPT = textwrap.dedent("""
    import sys, threading, time
    from asgi_backends.inmemory import ChannelLayer
    from worker import Worker

    class Router:
        channels = {"job"}
        def match(self, message):
            return consume, {}

    forever = threading.Event()

    def consume(message):
        print("started", flush=True)
        if message["mode"] == "forever":
            forever.wait()
        else:
            forever.wait(0.3)  # 0.3 s of work in hand (the event is never set)
        print("finished", flush=True)

    layer = ChannelLayer(blocking_timeout=30)
    layer.send("job", {"mode": sys.argv[1]})
    Worker(layer, Router()).run()
    print("clean exit", flush=True)
""")


def start_script(mode):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "started"
    return proc


def test_sigterm_finishes_the_message_in_hand_then_exits_0():
    import signal

    proc = start_script("short")
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split() == ["finished", "clean", "exit"]


def test_second_signal_exits_at_once():
    import signal

    proc = start_script("forever")
    try:
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)  # two distinct signals: both handlers run, in turn
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "finished" not in out and "Second shutdown signal" in err


def test_prefetch_runs_everything_in_order_and_stop_keeps_the_rest_queued(layer):
    seen = []
    gate = threading.Event()

    def consume(message):
        seen.append(message["n"])
        if message["n"] == 0:
            gate.wait(5)

    for n in range(4):
        layer.send("jobs", {"n": n})
    worker = running(layer, {"jobs": consume}, threads=1, prefetch=1)
    wait_until(lambda: seen == [0])
    # One message in hand, one prefetched; nothing more is taken while the consumer runs.
    wait_until(lambda: layer.channel_statistics("jobs")["messages_pending"] == 2)
    worker.stop()
    gate.set()
    assert worker.join(5)
    assert seen == [0, 1]  # the prefetched message ran before the worker left
    assert [layer.receive(["jobs"])[1]["n"] for _ in range(2)] == [2, 3]


class RecordingLayer(ChannelLayer):
    """An in-memory layer that notes its blocking receives and its sends that carry a receive."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def receive_batch(self, channels, max_messages, block=False):
        received = super().receive_batch(channels, max_messages, block=block)
        if block and received:
            self.calls.append(("blocking receive", [message.get("n") for _, message in received]))
        return received

    def send_batch_and_receive(self, items, channels, max_messages):
        results, received = super().send_batch_and_receive(items, channels, max_messages)
        self.calls.append(("answer and receive", max_messages, [message.get("n") for _, message in received]))
        return results, received


class AnsweringHooks(WorkerHooks):
    """Sends each consumer's answer itself, as the Django app's outbox does: with the worker's fetch."""

    def call(self, consumer, message, kwargs):
        answer = consumer(message, **kwargs)
        fetch = current_fetch()
        if answer is not None and not (fetch and fetch.send(message.channel_layer, "answers", answer)):
            message.channel_layer.send("answers", answer)


@pytest.mark.parametrize("prefetch", [0, 1])
def test_each_answer_carries_the_next_receive(prefetch):
    layer = RecordingLayer(blocking_timeout=5.0)
    for n in range(5):
        layer.send("jobs", {"n": n})
    worker = Worker(layer, TableRouter({"jobs": lambda m: {"n": m["n"]}, "quiet": lambda m: None}),
                    AnsweringHooks(), signal_handlers=False, prefetch=prefetch)
    worker.start()
    try:
        wait_until(lambda: len(layer.calls) == 6)
        assert [layer.receive(["answers"])[1]["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
        # One blocking receive took what the thread may hold; each answer took the next ones,
        # topping the thread up to prefetch + 1 messages.
        held = prefetch + 1
        assert layer.calls[0] == ("blocking receive", list(range(held)))
        assert [call[0] for call in layer.calls[1:]] == ["answer and receive"] * 5
        assert [n for call in layer.calls[1:] for n in call[2]] == list(range(held, 5))
        assert [call[1] for call in layer.calls[1:]] == [1, 1, 1, 1, held]
        # A consumer that answers nothing takes nothing: the thread receives as usual.
        layer.send("quiet", {"n": 5})
        layer.send("jobs", {"n": 6})
        wait_until(lambda: layer.channel_statistics("answers")["messages_pending"] == 1)
        assert layer.receive(["answers"]) == ("answers", {"n": 6})
    finally:
        worker.stop()
        assert worker.join(5)


def test_prefetch_with_a_thread_pool(layer):
    seen = []
    lock = threading.Lock()

    def consume(message):
        with lock:
            seen.append(message["n"])

    worker = running(layer, {"jobs": consume}, threads=3, prefetch=2)
    try:
        for n in range(60):
            layer.send("jobs", {"n": n})
        wait_until(lambda: len(seen) == 60)
        assert sorted(seen) == list(range(60))
    finally:
        worker.stop()
        assert worker.join(5)
    with pytest.raises(ValueError, match="prefetch"):
        Worker(layer, TableRouter({"a": print}), prefetch=-1)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_an_ordered_channel_has_one_thread_that_alone_runs_its_messages_in_order(layer, prefetch):
    seen = []
    shared = []
    done_threads = []

    class Hooks(WorkerHooks):
        def thread_done(self):
            done_threads.append(threading.current_thread().name)

    def ordered(message):
        seen.append((message["n"], threading.current_thread().name))

    worker = Worker(layer, TableRouter({"jobs": ordered, "other": lambda m: shared.append(threading.current_thread().name)}),
                    Hooks(), threads=4, prefetch=prefetch, ordered_channels=["jobs", "not-listened-on"],
                    signal_handlers=False)
    assert worker.ordered_channels == ["jobs"]
    worker.start()
    started = None
    try:
        for n in range(60):
            layer.send("jobs", {"n": n})
            layer.send("other", {})
        wait_until(lambda: len(seen) == 60 and len(shared) == 60)
    finally:
        started = time.monotonic()
        worker.stop()
        assert worker.join(4)
    assert time.monotonic() - started < layer.blocking_timeout  # the ordered thread was woken too
    assert [n for n, _ in seen] == list(range(60))
    assert {name for _, name in seen} == {"worker-jobs"}
    assert "worker-jobs" not in shared
    assert sorted(done_threads) == sorted(thread.name for thread in worker._threads)


def test_a_worker_of_ordered_channels_only_starts_no_shared_threads(layer):
    seen = []
    worker = running(layer, {"jobs": lambda m: seen.append(m["n"])}, threads=3, ordered_channels=["jobs"])
    try:
        layer.send("jobs", {"n": 1})
        wait_until(lambda: seen == [1])
        assert [thread.name for thread in worker._threads] == ["worker-jobs"]
    finally:
        worker.stop()
        assert worker.join(4)
