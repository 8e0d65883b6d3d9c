"""Channels 2-4 HTTP consumers on real processes: server-sent events, long polling, named channels.

redis-server + ``interface-server config.asgi:application`` + two
``runworker`` processes of the streaming project (tests/e2e/streaming);
real HTTP clients. The project's "http" is a URLRouter with
AsyncHttpConsumer routes and Django's views behind them.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e.support import REPO, Proc, free_port, http_get, wait_for_port
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent / "streaming"


class Deployment:
    """redis-server, one interface server and two workers of the streaming project."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = RedisServer().start()
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("E2E_")}
        self.env.update(PYTHONPATH=f"{REPO}{os.pathsep}{PROJECT}", PYTHONUNBUFFERED="1",
                        DJANGO_SETTINGS_MODULE="config.settings", E2E_REDIS_URL=self.redis.url,
                        E2E_MARKS=str(self.marks))
        self.port = free_port()
        self.server = Proc([sys.executable, "-m", "interface_server", "config.asgi:application", "-b", "127.0.0.1",
                            "-p", str(self.port), "--websocket-handler-timeout", "5"], self.env, tmp / "server.log",
                           cwd=PROJECT)
        self.workers: list[Proc] = []
        self.started = 0
        for _ in range(2):
            self.add_worker()
        wait_for_port(self.port)

    def add_worker(self) -> Proc:
        worker = Proc([sys.executable, str(PROJECT / "manage.py"), "runworker", "--threads", "1", "--prefetch", "0"],
                      self.env, self.tmp / f"worker{self.started}.log", cwd=PROJECT)
        self.started += 1
        worker.wait_for_output("Listening on channels")
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "".join(worker.output() for worker in self.workers)

    def mark(self, prefix: str) -> list[str]:
        return sorted(p.name for p in self.marks.iterdir() if p.name.startswith(prefix))

    def post(self, room: str, query: str) -> int:
        """group_send to a room's streams through a Django view; return how many streams are in the room."""
        status, body = http_get(self.port, f"/post/{room}/?{query}")
        assert status == 200, body
        return int(body)

    def stop(self) -> None:
        for proc in [self.server, *self.workers]:
            proc.stop()
        self.redis.cleanup()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    running = Deployment(tmp_path_factory.mktemp("streaming"))
    try:
        yield running
    finally:
        running.stop()


class EventStream:
    """A real HTTP client reading a text/event-stream response one event at a time."""

    def __init__(self, port: int, path: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()

    def next_event(self) -> str:
        """The next event's lines (a comment or ``data: ...``), without the blank line that ends it."""
        lines = []
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError(f"the stream ended after {lines!r}")
            if line == b"\n":
                return "".join(lines)
            lines.append(line.decode())

    def next_data(self) -> dict:
        text = self.next_event()
        assert text.startswith("data: "), text
        return json.loads(text[len("data: "):])

    def close(self) -> None:
        self.conn.close()


def test_workers_listen_on_the_http_consumer_channels(deployment):
    output = deployment.workers[0].output()
    for name in ("http.request", "http.event", "http.disconnect", "tally"):
        assert name in output
    assert "one thread each for tally" in output


def test_sse_stream_gets_group_sends_from_other_requests_across_two_workers(deployment):
    pids = {worker.pid for worker in deployment.workers}
    leaving = None
    stream = EventStream(deployment.port, "/events/lobby/")
    try:
        response = stream.response
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        assert response.getheader("Transfer-Encoding") == "chunked"
        opened = stream.next_event()
        assert opened.startswith(": open ") and int(opened.split()[2]) in pids
        for n in range(1, 5):
            assert deployment.post("lobby", f"text=hello{n}") == 1  # a Django view, another request
            event = stream.next_data()  # while the response is still open: it streams
            assert event["text"] == f"hello{n}" and event["n"] == n and event["pid"] in pids
        # One worker leaves (a deploy); the next event runs on the other, with the state kept so far.
        leaving, staying = deployment.workers
        assert leaving.stop(signal.SIGTERM) == 0
        assert deployment.post("lobby", "text=after") == 1
        assert stream.next_data() == {"text": "after", "n": 5, "pid": staying.pid}
        assert deployment.post("lobby", "text=bye&last") == 1
        assert stream.next_data() == {"text": "bye", "n": 6, "pid": staying.pid}
        assert response.read() == b"" and response.isclosed()  # the last body ended the response
        wait_until(lambda: deployment.mark("lobby.disconnect.6."), 10, what="disconnect() after the last body")
        assert deployment.post("lobby", "text=nobody") == 0
    finally:
        stream.close()
        if leaving is not None:  # two workers again for the next tests
            deployment.workers.remove(leaving)
            deployment.add_worker()


def test_chunks_reach_the_client_as_they_are_sent(deployment):
    """On the wire: chunked framing, the head and the first chunk before anything else exists."""
    with socket.create_connection(("127.0.0.1", deployment.port), timeout=10) as sock:
        sock.sendall(b"GET /events/wire/ HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\n\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked" in head
        size, _, rest = body.partition(b"\r\n")
        chunk, end = rest[:int(size, 16)], rest[int(size, 16):]
        assert chunk.startswith(b": open ") and chunk.endswith(b"\n\n") and end == b"\r\n"
        deployment.post("wire", "text=x&last")
        while not data.endswith(b"\r\n0\r\n\r\n"):
            data += sock.recv(65536)
        assert b'data: {"text": "x", "n": 1' in data


def test_url_router_serves_the_consumers_and_djangos_views(deployment):
    status, body = http_get(deployment.port, "/")
    assert status == 200 and body.startswith(b"home (pid ")
    assert http_get(deployment.port, "/stream/") == (200, b"one,two,three")  # a 1.x streaming view, still chunked
    assert http_get(deployment.port, "/nowhere/")[0] == 404  # Django's own 404, behind the catch-all route
    stream = EventStream(deployment.port, "/events/side/")
    try:
        assert stream.response.getheader("Content-Type") == "text/event-stream"
        assert stream.next_event().startswith(": open ")
    finally:
        stream.close()


def test_a_client_gone_mid_stream_runs_disconnect_on_a_worker(deployment):
    stream = EventStream(deployment.port, "/events/gone/")
    stream.next_event()
    assert deployment.post("gone", "text=one") == 1
    assert stream.next_data()["n"] == 1
    stream.close()
    wait_until(lambda: deployment.mark("gone.disconnect.1."), 10, what="disconnect() with the kept state")
    assert deployment.post("gone", "text=nobody") == 0


def test_long_poll_completed_by_an_event_from_another_request(deployment):
    result = {}
    poller = threading.Thread(target=lambda: result.update(answer=http_get(deployment.port, "/poll/")))
    poller.start()

    def answered() -> bool:
        # Posting until the poll has its answer: the first post after it joined its group completes it.
        deployment.post("poll", "text=news")
        poller.join(0.05)
        return not poller.is_alive()

    wait_until(answered, 10, what="the poll to get its answer", interval=0)
    assert result["answer"] == (200, b'{"text": "news"}')


def test_a_raising_handler_is_a_500_logged_with_class_method_and_request_and_the_worker_carries_on(deployment):
    status, body = http_get(deployment.port, "/fail/")
    assert status == 500 and body == b"Internal Server Error"
    wait_until(lambda: "FailingConsumer.handle raised handling http.request; answering 500 to /fail/ ("
               in deployment.logs(), 10, what="the failure logged")
    assert http_get(deployment.port, "/")[0] == 200
    # Once the head is out, a failure can only cut the response short.
    stream = EventStream(deployment.port, "/fail/late/")
    try:
        assert stream.response.status == 200 and stream.response.readline() == b"partial\n"
        assert deployment.post("late", "text=boom") == 1
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            stream.response.read()
    finally:
        stream.close()
    wait_until(lambda: "FailingConsumer.news_item raised handling news.item; aborting the response to /fail/late/"
               in deployment.logs(), 10, what="the event handler's failure logged")
    wait_until(lambda: [name.rsplit(".", 1)[0] for name in deployment.mark("fail.disconnect.")]
               == ["fail.disconnect.early", "fail.disconnect.late"], 10, what="disconnect() after each failure")
    assert http_get(deployment.port, "/")[0] == 200


def test_a_named_channel_keeps_one_instance_per_worker_process(deployment):
    pids = {worker.pid for worker in deployment.workers}
    stream = EventStream(deployment.port, "/events/tally/")
    try:
        stream.next_event()
        assert http_get(deployment.port, "/tally/8/?room=tally") == (200, b"sent")
        counts: dict[int, list[int]] = {}
        for _ in range(8):
            pid, count = map(int, stream.next_data()["text"].split(":"))
            counts.setdefault(pid, []).append(count)
    finally:
        stream.close()
    assert set(counts) <= pids
    for seen in counts.values():  # each process's instance counts on from its last message
        assert seen == list(range(seen[0], seen[0] + len(seen)))
