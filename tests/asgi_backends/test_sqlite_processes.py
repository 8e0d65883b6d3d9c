"""The SQLite layer across real processes: exactly-once delivery, SIGKILL, wake-ups."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from asgi_backends.conformance import wait_for
from asgi_backends.sqlite import SQLiteChannelLayer
from asgi_backends.sqlite.wakeup import HANDOFF_LIMIT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every child builds its layer from the JSON config in argv[1]; a long
# recheck_interval means only a wake-up datagram can end a blocked receive early.
PRELUDE = """
import json, os, sys, time
from asgi_backends.sqlite import SQLiteChannelLayer
config = json.loads(sys.argv[1])
layer = SQLiteChannelLayer(**config)
def say(**fields):
    print(json.dumps(fields), flush=True)
"""

EXCHANGE = """
# Send our numbered messages to one shared channel, receiving from it as we go,
# then drain until the channel stays quiet.
me, count = sys.argv[2], int(sys.argv[3])
got = []
for i in range(count):
    layer.send("shared", {"from": me, "n": i})
    channel, message = layer.receive(["shared"], block=(i % 3 == 0))
    if channel is not None:
        got.append([message["from"], message["n"]])
while True:
    channel, message = layer.receive(["shared"], block=True)
    if channel is None:
        break
    got.append([message["from"], message["n"]])
say(got=got)
"""

VICTIM = """
# Write as fast as possible (sends, group changes, a receive blocked in another
# thread) and report each send that returned, until killed.
import threading
threading.Thread(target=lambda: layer.receive(["victim.inbox"], block=True), daemon=True).start()
i = 0
while True:
    layer.send("victim.sink", {"n": i})
    say(sent=i)
    layer.group_add("victims", "victim.sink")
    layer.receive(["victim.nothing"])
    i += 1
"""

RECEIVER = """
# Block on one receive; report what it returned.
say(ready=True)
channel, message = layer.receive(sys.argv[2].split(","), block=True)
say(channel=channel, size=len(message["body"]) if message else None)
"""


def child(config: dict, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), json.dumps(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def finish(process: subprocess.Popen, timeout: float = 30) -> list[dict]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def directory():
    path = tempfile.mkdtemp(prefix="asgi-sqlite-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def layer(directory):
    layer = SQLiteChannelLayer(directory, capacity=10000, blocking_timeout=1)
    yield layer
    layer.close()


def integrity(directory: str) -> str:
    conn = sqlite3.connect(os.path.join(directory, "channels.sqlite3"))
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def tickets(directory: str) -> int:
    conn = sqlite3.connect(os.path.join(directory, "channels.sqlite3"))
    try:
        return conn.execute("SELECT count(DISTINCT ticket) FROM waiters").fetchone()[0]
    finally:
        conn.close()


def test_two_processes_send_and_receive_concurrently_exactly_once(directory):
    config = {"path": directory, "capacity": 10000, "blocking_timeout": 1}
    count = 400
    processes = [child(config, EXCHANGE, name, str(count)) for name in ("a", "b")]
    received = [tuple(item) for process in processes for item in finish(process)[-1]["got"]]
    assert len(received) == len(set(received)), "a message was delivered twice"
    assert sorted(received) == sorted((name, n) for name in ("a", "b") for n in range(count))
    assert integrity(directory) == "ok"


def test_sigkill_mid_operation_loses_nothing_committed_and_wedges_nothing(directory, layer):
    config = {"path": directory, "capacity": 100000, "blocking_timeout": 30}
    for round_ in range(3):
        victim = child(config, VICTIM)
        last = None
        for _ in range(200 + 150 * round_):  # let it get well into its loop, a different way in each time
            last = json.loads(victim.stdout.readline())["sent"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        for line in victim.stdout:  # reports written before the kill
            last = json.loads(line)["sent"]
        victim.stdout.close()
        victim.stderr.close()
        # The survivors' lock is free at once, and nothing is corrupt.
        assert integrity(directory) == "ok"
        sink = []
        while True:
            channel, message = layer.receive(["victim.sink"])
            if channel is None:
                break
            sink.append(message["n"])
        # Every send that returned is there, in order; at most the one in flight beyond.
        assert sink == list(range(len(sink)))
        assert len(sink) in (last + 1, last + 2)
        assert layer.group_channels("victims") == ["victim.sink"]
    # The victims' receivers were blocked with tickets; a send now finds them
    # dead and leaves the message for a live receiver instead.
    layer.send("victim.inbox", {"after": "kill"})
    assert layer.receive(["victim.inbox"], block=True) == ("victim.inbox", {"after": "kill"})
    assert tickets(directory) == 0
    survivors = [child({"path": directory, "capacity": 10000, "blocking_timeout": 1}, EXCHANGE, name, "100")
                 for name in ("a", "b")]
    received = [tuple(item) for process in survivors for item in finish(process)[-1]["got"]]
    assert sorted(received) == sorted((name, n) for name in ("a", "b") for n in range(100))


@pytest.mark.parametrize("size", [100, HANDOFF_LIMIT + 1000], ids=["hand-off", "stored-and-poked"])
def test_blocked_receiver_in_another_process_is_woken(directory, layer, size):
    # recheck_interval=60: without the wake-up datagram the child would sleep
    # far past the 10 s this test waits.
    config = {"path": directory, "blocking_timeout": 60, "recheck_interval": 60, "max_message_size": 2**20}
    receiver = child(config, RECEIVER, "other,wake.me!")
    assert json.loads(receiver.stdout.readline()) == {"ready": True}
    wait_for(lambda: tickets(directory) == 1, timeout=10)
    layer.send("wake.me!abc", {"body": b"x" * size})
    report = finish(receiver, timeout=10)
    assert report == [{"channel": "wake.me!abc", "size": size}]
    assert tickets(directory) == 0


def test_group_send_wakes_receivers_in_other_processes(directory, layer):
    config = {"path": directory, "blocking_timeout": 60, "recheck_interval": 60}
    receivers = [child(config, RECEIVER, name) for name in ("member.one", "member.two")]
    for receiver in receivers:
        assert json.loads(receiver.stdout.readline()) == {"ready": True}
    wait_for(lambda: tickets(directory) == 2, timeout=10)
    layer.group_add("members", "member.one")
    layer.group_add("members", "member.two")
    layer.send_group("members", {"body": b"hello"})
    assert [finish(r, timeout=10) for r in receivers] == [
        [{"channel": "member.one", "size": 5}],
        [{"channel": "member.two", "size": 5}],
    ]


def test_receiver_killed_while_blocked_does_not_swallow_messages(directory, layer):
    config = {"path": directory, "blocking_timeout": 60, "recheck_interval": 60}
    receiver = child(config, RECEIVER, "orphan")
    assert json.loads(receiver.stdout.readline()) == {"ready": True}
    wait_for(lambda: tickets(directory) == 1, timeout=10)
    sockets = os.listdir(os.path.join(directory, "wake"))
    os.kill(receiver.pid, signal.SIGKILL)
    receiver.communicate(timeout=10)
    layer.send("orphan", {"body": b"for whoever is alive"})
    assert layer.receive(["orphan"]) == ("orphan", {"body": b"for whoever is alive"})
    # The dead receiver's socket file was cleaned up by the sender that found it dead.
    assert not set(sockets) & set(os.listdir(os.path.join(directory, "wake")))


def test_late_hand_off_goes_back_to_the_channel(directory, layer):
    from asgi_backends.sqlite import queues

    # Record a ticket as a blocked receive would, then never wait on it: the
    # hand-off it attracts arrives when nobody expects it.
    transport = layer._transport
    waiter = transport.waiter()
    _, ticket = waiter.new_ticket()
    transport.write(lambda conn: queues.take_or_wait(conn, ["late"], time.time(), None, ticket))
    layer.send("late", {"n": 1})
    assert layer.receive(["late"]) == (None, None)  # it is in our socket, not the database
    # The next blocking receive on this thread sees a datagram for an old
    # ticket and puts its message back where any receiver can find it.
    layer.blocking_timeout = 0.2
    assert layer.receive(["elsewhere"], block=True) == (None, None)
    assert layer.receive(["late"]) == ("late", {"n": 1})


def test_refused_hand_off_is_stored_instead(directory, layer):
    import socket

    from asgi_backends.sqlite import queues

    transport = layer._transport
    waiter = transport.waiter()
    _, ticket = waiter.new_ticket()
    transport.write(lambda conn: queues.take_or_wait(conn, ["full"], time.time(), None, ticket))
    # Fill the waiter's socket until it refuses more, as a stuck receiver's would.
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    try:
        for _ in range(100000):
            try:
                filler.sendto(b"0\n", waiter.path)
            except BlockingIOError:
                break
        else:
            pytest.fail("the waiter's socket never filled up")
    finally:
        filler.close()
    layer.send("full", {"n": 3})
    assert layer.receive(["full"]) == ("full", {"n": 3})
    while waiter.read() is not None:
        pass


def test_close_puts_unclaimed_hand_offs_back(directory):
    from asgi_backends.sqlite import queues

    first = SQLiteChannelLayer(directory)
    second = SQLiteChannelLayer(directory)
    waiter = first._transport.waiter()
    _, ticket = waiter.new_ticket()
    first._transport.write(lambda conn: queues.take_or_wait(conn, ["late"], time.time(), None, ticket))
    second.send("late", {"n": 2})
    first.close()
    assert second.receive(["late"]) == ("late", {"n": 2})
    second.close()


def test_path_must_be_a_directory(directory):
    path = os.path.join(directory, "a-file")
    with open(path, "w") as f:
        f.write("not a directory")
    with pytest.raises(ValueError, match="not a directory"):
        SQLiteChannelLayer(path)
    with pytest.raises(ValueError, match="recheck_interval"):
        SQLiteChannelLayer(directory, recheck_interval=0)


def test_asgi_ipc_settings_still_work():
    # Channels 1.x settings for asgi_ipc name a prefix and segment sizes, no path.
    prefix = f"test-{os.getpid()}"
    first = SQLiteChannelLayer(prefix=prefix, message_memory=10**8, group_memory=10**7)
    second = SQLiteChannelLayer(prefix=prefix)
    try:
        assert first.path == second.path
        first.send("compat", {"ok": True})
        assert second.receive(["compat"]) == ("compat", {"ok": True})
    finally:
        first.close()
        second.close()
        shutil.rmtree(first.path, ignore_errors=True)
    with pytest.raises(ValueError, match="needs a directory"):
        SQLiteChannelLayer()
    with pytest.raises(ValueError, match="prefix"):
        SQLiteChannelLayer(prefix="../escape")


def _forked_echo(layer: SQLiteChannelLayer) -> None:
    channel, message = layer.receive(["fork.ping"], block=True)
    layer.send("fork.pong", {"echo": message["n"]} if message else {"echo": None})


def test_layer_keeps_working_in_a_forked_child(layer):
    import multiprocessing

    # Used before the fork, so the parent's connection and wake-up socket
    # exist; the child must open its own instead of sharing them.
    layer.send("fork.warm", {"n": 0})
    assert layer.receive(["fork.warm"], block=True) == ("fork.warm", {"n": 0})
    layer.blocking_timeout = 10
    child_process = multiprocessing.get_context("fork").Process(target=_forked_echo, args=(layer,))
    child_process.start()
    try:
        wait_for(lambda: tickets(layer.path) == 1, timeout=10)
        layer.send("fork.ping", {"n": 7})
        assert layer.receive(["fork.pong"], block=True) == ("fork.pong", {"echo": 7})
    finally:
        child_process.join(10)
    assert child_process.exitcode == 0
    assert integrity(layer.path) == "ok"


def test_new_layer_sweeps_sockets_of_dead_processes(directory):
    config = {"path": directory, "blocking_timeout": 60, "recheck_interval": 60}
    receiver = child(config, RECEIVER, "nobody.sends")
    assert json.loads(receiver.stdout.readline()) == {"ready": True}
    wait_for(lambda: tickets(directory) == 1, timeout=10)
    wake = os.path.join(directory, "wake")
    assert len(os.listdir(wake)) == 1
    os.kill(receiver.pid, signal.SIGKILL)
    receiver.communicate(timeout=10)
    SQLiteChannelLayer(directory).close()
    assert os.listdir(wake) == []


def test_long_path_puts_sockets_in_a_private_temporary_directory(directory, monkeypatch):
    # A socket address holds ~100 bytes; a deeper layer directory moves the
    # sockets to <tmp>/asgi-sqlite-wake-<uid>, which must be ours alone.
    monkeypatch.setattr(tempfile, "tempdir", directory)
    shared = os.path.join(directory, f"asgi-sqlite-wake-{os.getuid()}")
    os.mkdir(shared, 0o755)
    os.chmod(shared, 0o755)
    deep = os.path.join(directory, "d" * 120)
    with pytest.raises(ValueError, match="0700"):
        SQLiteChannelLayer(deep)
    os.chmod(shared, 0o700)
    first, second = SQLiteChannelLayer(deep, blocking_timeout=10), SQLiteChannelLayer(deep)
    try:
        receiver = threading.Thread(target=lambda: received.append(first.receive(["deep"], block=True)))
        received: list = []
        receiver.start()
        wait_for(lambda: tickets(deep) == 1, timeout=10)
        assert os.listdir(shared)  # the waiting thread's socket
        second.send("deep", {"ok": 1})
        receiver.join(10)
        assert received == [("deep", {"ok": 1})]
    finally:
        first.close()
        second.close()
