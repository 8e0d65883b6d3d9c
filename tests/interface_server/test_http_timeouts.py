"""HTTP timeouts at their edges, on a task.Clock: head deadline, body idle, response, keep-alive."""

from __future__ import annotations

import pytest

from interface_server.http_protocol import HTTPState

from .conftest import HTTPHarness

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


# -- the request head: one deadline -------------------------------------------------------


def test_a_connection_that_never_sends_a_byte_is_closed_at_the_head_deadline():
    harness = HTTPHarness(request_head_timeout=20)
    client = harness.connect()
    harness.advance_to(19.999)
    assert not client.closed
    harness.advance_to(20)
    assert client.closed and client.output() == b""  # nothing asked, nothing answered


def test_first_head_counts_from_the_accept_not_from_its_first_byte():
    harness = HTTPHarness(request_head_timeout=20)
    client = harness.connect()
    harness.advance_to(15)
    client.send(b"GET / HTTP/1.1\r\n")
    harness.advance_to(19.999)
    assert not client.closed
    harness.advance_to(20)
    assert client.status() == 408 and client.closed


def test_a_head_trickled_one_byte_at_a_time_is_cut_off_at_its_deadline():
    harness = HTTPHarness(request_head_timeout=20)
    client = harness.connect()
    head = GET.replace(b"\r\n\r\n", b"\r\nX-Slow: " + b"a" * 100)
    for second, byte in enumerate(head[:40]):
        harness.advance_to(second * 0.5)
        client.send(bytes([byte]))
    assert not client.closed  # 19.5 s in, every byte on time: no byte extends the deadline
    harness.advance_to(20)
    assert client.status() == 408 and client.closed
    assert harness.receive() is None


def test_a_later_head_counts_from_its_own_first_byte():
    harness = HTTPHarness(request_head_timeout=10, keepalive_timeout=75)
    client = harness.connect()
    client.send(GET)
    client.reply(client.request()["reply_channel"])
    client.output()
    harness.advance_to(50)  # idle in keep-alive: no head deadline yet
    assert not client.closed
    client.send(b"GET / HTTP/1.1\r\n")
    harness.advance_to(59.999)
    client.send(b"Host: x\r\n")
    assert not client.closed
    harness.advance_to(60)
    assert client.status() == 408 and client.closed


def test_a_head_that_completes_in_time_is_served():
    harness = HTTPHarness(request_head_timeout=20)
    client = harness.connect()
    client.send(b"GET / HTTP/1.1\r\n")
    harness.advance_to(19.9)
    client.send(b"Host: x\r\n\r\n")
    assert client.request()["path"] == "/"
    harness.advance_to(25)
    assert not client.closed


# -- keep-alive ----------------------------------------------------------------------------


def test_idle_keepalive_connection_is_closed_after_keepalive_timeout():
    harness = HTTPHarness(keepalive_timeout=5, request_head_timeout=20)
    client = harness.connect()
    harness.advance_to(1)
    client.send(GET)
    client.reply(client.request()["reply_channel"])
    client.output()
    harness.advance_to(5.999)
    assert not client.closed
    harness.advance_to(6)
    assert client.closed and client.output() == b""


# -- the request body: an idle timeout -------------------------------------------------------


def test_body_that_stops_arriving_gets_408_after_the_idle_timeout():
    harness = HTTPHarness(request_body_timeout=30)
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    harness.advance_to(29.999)
    assert not client.closed
    harness.advance_to(30)
    assert client.status() == 408 and client.closed
    assert harness.receive() is None  # the application never saw the half-sent request


def test_body_idle_timeout_restarts_with_every_byte():
    harness = HTTPHarness(request_body_timeout=30)
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    for second in (20, 40, 60, 80):
        harness.advance_to(second)
        client.send(b"a")
    assert not client.closed
    harness.advance_to(100)
    client.send(b"a")
    assert client.request()["body"] == b"aaaaa"


def test_streamed_body_that_stops_tells_the_application():
    harness = HTTPHarness(request_body_timeout=30, body_inline_limit=4)
    client = harness.connect()
    client.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
    message = client.request()
    assert message["body"] == b"aaaa"
    harness.advance_to(30)
    assert client.status() == 408 and client.closed
    chunks = []
    while (chunk := harness.receive(message["body_channel"])) is not None:
        chunks.append(chunk)
    assert chunks[-1] == {"content": b"", "closed": True, "more_content": False}
    assert harness.receive("http.disconnect") == {"reply_channel": message["reply_channel"], "path": "/up"}


def test_body_timeout_while_the_application_does_not_read_its_body_gives_503():
    harness = HTTPHarness(request_body_timeout=30, body_inline_limit=4, max_pending_bytes=8, hold_sends=True)
    sender = harness.sender
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 20)
    assert client.transport.producerState == "paused"  # the body waits for the layer
    harness.advance_to(29.999)
    assert not client.closed
    harness.advance_to(30)
    assert client.status() == 503 and client.closed
    assert sender.held


# -- the response --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"abc"])
def test_no_response_within_http_timeout_gives_503(body):
    harness = HTTPHarness(http_timeout=120, request_head_timeout=200)
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    message = client.request()
    harness.advance_to(119.999)
    assert not client.closed
    harness.advance_to(120)
    assert client.status() == 503 and client.closed
    assert harness.receive("http.disconnect") == {"reply_channel": message["reply_channel"], "path": "/"}
    client.reply(message["reply_channel"])  # too late: dropped quietly
    assert client.output() == b""


def test_http_timeout_counts_from_the_end_of_the_body():
    harness = HTTPHarness(http_timeout=10, body_inline_limit=4, request_body_timeout=30)
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nabcde")
    harness.advance_to(25)
    client.send(b"fgh")
    harness.advance_to(34.999)
    assert not client.closed and client.protocol.state is HTTPState.WAITING
    harness.advance_to(35)
    assert client.status() == 503


def test_a_streamed_response_has_no_response_timeout():
    harness = HTTPHarness(http_timeout=10)
    client = harness.connect()
    client.send(GET)
    reply = client.request()["reply_channel"]
    client.reply(reply, more=True)
    harness.advance_to(100)
    client.reply(reply, status=None, content=b"late", more=True)
    assert not client.closed and client.output().endswith(b"4\r\nlate\r\n")


def test_timers_are_one_per_connection_not_one_per_request():
    harness = HTTPHarness()
    client = harness.connect()
    for _ in range(50):
        client.send(GET)
        client.reply(client.request()["reply_channel"])
    assert len(harness.clock.getDelayedCalls()) == 1
