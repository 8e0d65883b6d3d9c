"""``manage.py rundelay`` as a real process on the same-machine layer."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from tests.binding.live import LiveStack, layer_for, manage
from tests.e2e.support import Proc
from tests.support import waiting

pytestmark = pytest.mark.slow


@pytest.fixture
def delay_stack(tmp_path):
    """A migrated project database, no worker or server; the test starts rundelay itself."""
    stack = LiveStack(tmp_path)
    from tests.binding.live import migrated_database

    migrated_database(tmp_path / "db.sqlite3")
    yield stack
    stack.stop()


def start_rundelay(stack, name="rundelay"):
    proc = Proc(manage("rundelay", "-v", "1"), stack.env, stack.tmp / f"{name}.log")
    stack.procs.append(proc)
    proc.wait_for_output("Listening on asgi.delay")
    return proc


def receive(layer, channel, until):
    """Block on ``channel`` until a message comes (return it with its arrival time) or ``until`` passes."""
    while time.monotonic() < until:
        name, content = layer.receive([channel], block=True)
        if name is not None:
            return content, time.monotonic()
    return None, None


def stored_rows(stack):
    with sqlite3.connect(stack.env["LIVE_DB"]) as db:
        return db.execute("select count(*) from channels_delay_delayedmessage").fetchone()[0]


def wait_until(condition, timeout=10.0):
    return waiting.wait_until(condition, timeout)


def test_messages_arrive_after_their_delay_and_not_before(delay_stack):
    start_rundelay(delay_stack)
    layer = layer_for(delay_stack.env)
    sent = time.monotonic()
    layer.send("asgi.delay", {"channel": "delay.out", "content": {"n": "slow", "b": b"\x00"}, "delay": 1200})
    layer.send("asgi.delay", {"channel": "delay.out", "content": {"n": "fast"}, "delay": 400})
    first, first_at = receive(layer, "delay.out", sent + 10)
    second, second_at = receive(layer, "delay.out", sent + 10)
    assert first == {"n": "fast"} and second == {"n": "slow", "b": b"\x00"}
    assert first_at - sent >= 0.4 and second_at - sent >= 1.2
    assert second_at - sent < 5, "the due message waited for a periodic re-check"
    wait_until(lambda: stored_rows(delay_stack) == 0)


def test_a_restart_loses_nothing(delay_stack):
    first = start_rundelay(delay_stack, "rundelay1")
    layer = layer_for(delay_stack.env)
    sent = time.monotonic()
    layer.send("asgi.delay", {"channel": "delay.out", "content": {"n": 1}, "delay": 1000})
    wait_until(lambda: stored_rows(delay_stack) == 1)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # While no delay server runs, one more request waits on the layer...
    layer.send("asgi.delay", {"channel": "delay.out", "content": {"n": 2}, "delay": 0})
    # ... and nothing is delivered, even after the first message fell due.
    assert receive(layer, "delay.out", sent + 1.5) == (None, None)
    start_rundelay(delay_stack, "rundelay2")
    got = {receive(layer, "delay.out", time.monotonic() + 10)[0]["n"] for _ in range(2)}
    assert got == {1, 2}
    wait_until(lambda: stored_rows(delay_stack) == 0)


def test_bad_messages_are_logged_and_dropped(delay_stack):
    proc = start_rundelay(delay_stack)
    layer = layer_for(delay_stack.env)
    layer.send("asgi.delay", {"channel": "delay.out"})
    layer.send("asgi.delay", {"channel": "delay.out", "content": "nope", "delay": 1})
    layer.send("asgi.delay", {"channel": "delay.out", "content": {"ok": True}, "delay": 0})
    content, _ = receive(layer, "delay.out", time.monotonic() + 10)
    assert content == {"ok": True}
    output = proc.output()
    assert "lacks ['content', 'delay']" in output and "'content' must be a dict" in output
    assert proc.popen.poll() is None
    assert proc.stop(signal.SIGTERM) == 0
    assert "Delay server stopped" in proc.output()
