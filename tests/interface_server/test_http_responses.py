"""Responses and flow control: refused headers, failed streams, slow readers, busy layers, logs."""

from __future__ import annotations

import io
import logging

import pytest

from .conftest import HTTPHarness

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def start(harness: HTTPHarness, raw: bytes = GET):
    client = harness.connect()
    client.send(raw)
    return client, client.request()


# -- response headers the application may not send -------------------------------------------------


@pytest.mark.parametrize("header", [
    [b"X-Evil", b"a\r\nSet-Cookie: x"], [b"X-Evil", b"a\rb"], [b"X-Evil", b"a\nb"], [b"X-Evil", b"a\x00b"],
    [b"X-Evil\r\nSet-Cookie", b"x"], [b"X\rEvil", b"x"], [b"X\x00Evil", b"x"], [b"X Evil", b"x"], [b"X:Evil", b"x"],
    [b"", b"x"], ["X-Caf\u00e9", "x"], ["X-Evil", "a\r\nb"],
])
def test_response_header_with_line_break_or_nul_gets_500_and_one_log_line(header, caplog):
    caplog.set_level(logging.DEBUG, logger="interface_server")
    harness = HTTPHarness()
    client, message = start(harness)
    client.reply(message["reply_channel"], headers=[[b"Content-Type", b"text/plain"], header])
    data = client.output()
    assert data.startswith(b"HTTP/1.1 500 ") and b"Set-Cookie" not in data and b"Evil" not in data
    assert client.closed
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and not errors[0].exc_info


def test_ordinary_headers_pass():
    harness = HTTPHarness()
    client, message = start(harness)
    client.reply(message["reply_channel"], headers=[[b"X-Ok", b"a\tb \x80"], ["Set-Cookie", "a=b; Path=/"]])
    data = client.output()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"X-Ok: a\tb \x80\r\n" in data and b"Set-Cookie: a=b" in data


# -- a streamed response whose consumer fails part-way ------------------------------------------------


def test_a_second_response_head_mid_stream_aborts_the_connection(caplog):
    harness = HTTPHarness()
    client, message = start(harness)
    reply = message["reply_channel"]
    client.reply(reply, content=b"first", more=True)
    client.reply(reply, status=500, content=b"Internal Server Error")  # what a worker sends when a consumer fails
    data = client.output()
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"5\r\nfirst\r\n")  # cut short: no last chunk
    assert b"Internal Server Error" not in data
    assert client.aborted
    assert "new response" in caplog.text


def test_a_bad_chunk_after_the_head_aborts_rather_than_ends_the_response():
    harness = HTTPHarness()
    client, message = start(harness)
    client.reply(message["reply_channel"], content=b"first", more=True)
    harness.ctx.receiver.dispatch(message["reply_channel"], {"content": "not bytes", "more_content": False})
    assert client.output().endswith(b"5\r\nfirst\r\n") and client.aborted


# -- a client that does not read ------------------------------------------------------------------------


def test_slow_reader_of_a_streamed_response_is_cut_off_past_max_pending_bytes(caplog):
    harness = HTTPHarness(max_pending_bytes=10_000)
    client, message = start(harness)
    reply = message["reply_channel"]
    client.reply(reply, content=b"", more=True)
    client.transport.producer.pauseProducing()  # what the transport does when its send buffer is full
    for _ in range(9):
        client.reply(reply, status=None, content=b"a" * 1000, more=True)
    assert not client.aborted  # 9,000 bytes plus framing held: under the limit
    client.reply(reply, status=None, content=b"a" * 1000, more=True)
    assert client.aborted
    assert harness.receive("http.disconnect") == {"reply_channel": reply, "path": "/"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not reading" in warnings[0].getMessage()
    client.reply(reply, status=None, content=b"a" * 1000, more=True)  # late chunks are dropped quietly
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_reader_that_catches_up_starts_the_count_again():
    harness = HTTPHarness(max_pending_bytes=10_000)
    client, message = start(harness)
    reply = message["reply_channel"]
    client.reply(reply, content=b"", more=True)
    for _ in range(5):
        client.transport.producer.pauseProducing()
        for _ in range(8):
            client.reply(reply, status=None, content=b"a" * 1000, more=True)
        client.transport.producer.resumeProducing()  # the send buffer drained
    client.reply(reply, status=None, content=b"", more=False)
    assert not client.aborted and client.output().endswith(b"0\r\n\r\n")


def test_a_client_that_reads_nothing_for_send_timeout_is_aborted_with_its_response(caplog):
    caplog.set_level(logging.INFO, logger="interface_server")
    harness = HTTPHarness(send_timeout=60.0)
    client, message = start(harness)
    reply = message["reply_channel"]
    client.reply(reply, content=b"", more=True)
    client.transport.producer.pauseProducing()  # the socket's send buffer is full: the client stopped reading
    client.reply(reply, status=None, content=b"a" * 1000, more=True)
    harness.advance(59.9)
    assert not client.aborted
    harness.advance(0.2)
    assert client.aborted
    assert harness.receive("http.disconnect") == {"reply_channel": reply, "path": "/"}
    lines = [r for r in caplog.records if "send_timeout" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and not lines[0].exc_info


def test_a_finished_response_left_unread_does_not_hold_the_connection_past_send_timeout():
    # The response fits max_pending_bytes and the server closes its side (Connection: close), but
    # the transport cannot let go while bytes wait: only the send timeout frees the socket.
    harness = HTTPHarness(send_timeout=5.0)
    client, message = start(harness, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    client.transport.producer.pauseProducing()
    client.reply(message["reply_channel"], content=b"a" * 5000)
    assert client.closed and not client.aborted  # closing, waiting for the client to read
    harness.advance(5.1)
    assert client.aborted
    assert harness.receive("http.disconnect") is None  # the response was complete: nothing to tell


def test_a_reader_that_drains_in_time_keeps_its_connection():
    harness = HTTPHarness(send_timeout=5.0)
    client, message = start(harness)
    client.transport.producer.pauseProducing()
    harness.advance(4.9)
    client.transport.producer.resumeProducing()  # drained just in time
    client.transport.producer.pauseProducing()  # and full again: a new stall, timed from now
    harness.advance(4.9)
    assert not client.aborted
    client.transport.producer.resumeProducing()
    harness.advance(60)
    client.reply(message["reply_channel"])
    assert not client.aborted and client.status() == 200


def test_send_timeout_none_waits_for_ever():
    harness = HTTPHarness(send_timeout=None)
    client, message = start(harness)
    client.transport.producer.pauseProducing()
    harness.advance(3600)
    assert not client.aborted


# -- a layer slow to take a request body ----------------------------------------------------------------


def test_reading_pauses_while_the_request_body_waits_for_the_layer():
    harness = HTTPHarness(body_inline_limit=1000, max_pending_bytes=3000, hold_sends=True)
    client = harness.connect()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 4000)
    assert client.transport.producerState == "producing"  # 3,000 bytes waiting: not more than the limit
    client.send(b"a" * 1000)
    assert client.transport.producerState == "paused"
    released = 0
    while client.transport.producerState == "paused":
        harness.sender.release()  # the layer takes what waits: one chunk at a time
        released += 1
    assert released == 3  # resumed once no more than half the limit waits
    message = client.request()
    chunks = [harness.receive(message["body_channel"]) for _ in range(2)]
    assert [len(c["content"]) for c in chunks] == [1000, 1000] and all(c["more_content"] for c in chunks)


def test_a_full_body_channel_is_backpressure_not_an_error():
    from asgi_backends.inmemory import ChannelLayer

    harness = HTTPHarness(layer=ChannelLayer(channel_capacity={"http.request.body?*": 2}), body_inline_limit=10)
    client = harness.connect()
    body = bytes(range(100)) * 5
    client.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + body)
    message = client.request()
    received = message["body"]
    for _ in range(1000):  # the application reads a chunk now and then; refused chunks are retried in order
        harness.advance(0.1)
        chunk = harness.receive(message["body_channel"])
        if chunk is not None:
            received += chunk["content"]
            if not chunk["more_content"]:
                break
    assert received == body and not client.closed


def test_a_body_the_application_never_reads_ends_with_503_after_the_body_timeout():
    from asgi_backends.inmemory import ChannelLayer

    harness = HTTPHarness(layer=ChannelLayer(channel_capacity={"http.request.body?*": 1}), body_inline_limit=10,
                          max_pending_bytes=50, request_body_timeout=30)
    client = harness.connect()
    client.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 200)
    assert client.transport.producerState == "paused"
    harness.advance(29.9)
    assert not client.closed
    harness.advance(0.2)
    assert client.status() == 503 and client.closed
    message = client.request()
    assert harness.receive("http.disconnect") == {"reply_channel": message["reply_channel"], "path": "/up"}


# -- logs ------------------------------------------------------------------------------------------------


def test_access_log_redacts_the_session_key():
    stream = io.StringIO()
    harness = HTTPHarness(access_log=stream)
    client, message = start(harness, b"GET /chat/?a=1&session_key=s3cr3t&b=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    client.reply(message["reply_channel"])
    line = stream.getvalue()
    assert '"GET /chat/?a=1&session_key=REDACTED&b=2 HTTP/1.1" 200 2' in line and "s3cr3t" not in line


def test_reply_channel_names_are_never_logged_whole(caplog):
    caplog.set_level(logging.DEBUG, logger="interface_server")
    harness = HTTPHarness(verbosity=2)
    client, message = start(harness)
    client.reply(message["reply_channel"])
    assert "sent on" in caplog.text and message["reply_channel"] not in caplog.text
