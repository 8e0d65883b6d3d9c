"""HTTP requests served by Channels 2-4 consumers on workers: typed events one at a time, the state, the end.

Bytes through a StringTransport, time on a task.Clock, inline sends, the
in-memory layer; the test plays the worker (see channels.http_turn for the
wire format).
"""

from __future__ import annotations

import logging

from interface_server.http_protocol import HTTPState
from interface_server.http_turns import EVENT_CHANNEL
from interface_server.turns import MAX_QUEUED_EVENTS

from .conftest import HTTPHarness

GET = b"GET /events/ HTTP/1.1\r\nHost: x\r\n\r\n"
HEAD = {"status": 200, "headers": [[b"content-type", b"text/event-stream"]]}


def take(harness, channel):
    return harness.receive(channel)


def answer(client, reply_channel, replies, handled=None, state=None, end=False):
    message = {"replies": replies}
    if handled is not None:
        message["handled"] = handled
    if end:
        message["end"] = True
    elif handled is not None:
        message["state"] = state
    client.harness.ctx.receiver.dispatch(reply_channel, message)


def event(client, reply_channel, **fields):
    client.harness.ctx.receiver.dispatch(reply_channel, {"type": "news.item", **fields})


def open_stream(harness, state=b"S0"):
    """A client whose request a consumer answered with a head and an open body."""
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    answer(client, reply, [{**HEAD, "content": b": open\n\n", "more_content": True}], 0, state)
    return client, reply


def test_an_open_stream_gets_typed_events_one_at_a_time_with_the_state():
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    head = client.output()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked\r\n" in head
    assert head.endswith(b"\r\n\r\n8\r\n: open\n\n\r\n")
    event(client, reply, text="one")
    event(client, reply, text="two")
    first = take(harness, EVENT_CHANNEL)
    assert first == {"reply_channel": reply, "path": "/events/", "event": {"type": "news.item", "text": "one"},
                     "turn": 1, "state": b"S0"}
    assert take(harness, EVENT_CHANNEL) is None  # "two" waits for the answer to "one"
    answer(client, reply, [{"content": b"data: one\n\n", "more_content": True}], 1, b"S1")
    assert client.output() == b"b\r\ndata: one\n\n\r\n"  # out at once, chunked
    second = take(harness, EVENT_CHANNEL)
    assert second["event"]["text"] == "two" and second["turn"] == 2 and second["state"] == b"S1"
    assert client.protocol.state is HTTPState.RESPONDING and not client.closed


def test_events_during_turn_0_wait_for_its_answer():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    event(client, reply, text="early")  # handle() joined a group; a group_send came before its answer
    assert take(harness, EVENT_CHANNEL) is None
    answer(client, reply, [{**HEAD, "content": b"", "more_content": True}], 0, b"S0")
    assert take(harness, EVENT_CHANNEL)["event"]["text"] == "early"


def test_a_plain_response_drops_waiting_events_and_is_served_as_before():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    event(client, reply, text="early")
    client.reply(reply, content=b"from a view")
    assert client.output().endswith(b"from a view")
    assert take(harness, EVENT_CHANNEL) is None and client.protocol.turns is None
    event(client, reply, text="late")  # the reply channel is forgotten: dropped
    assert take(harness, EVENT_CHANNEL) is None


def test_the_last_body_ends_the_response_and_the_connection_serves_the_next_request():
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    client.output()
    answer(client, reply, [{"content": b"bye", "more_content": False}], 0, end=True)
    assert client.output() == b"3\r\nbye\r\n0\r\n\r\n"
    assert not client.closed and client.protocol.state is HTTPState.HEAD
    event(client, reply, text="late")
    assert take(harness, EVENT_CHANNEL) is None
    client.send(GET)
    assert client.request()["reply_channel"] != reply


def test_a_client_gone_mid_stream_sends_the_disconnect_after_the_turn_in_flight_with_its_state():
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    event(client, reply, text="one")
    assert take(harness, EVENT_CHANNEL)["turn"] == 1
    client.lose()
    assert take(harness, "http.disconnect") is None  # the worker still has turn 1
    event(client, reply, text="two")  # nobody will see it: dropped
    answer(client, reply, [{"content": b"data: one\n\n", "more_content": True}], 1, b"S1")
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 2, "state": b"S1"}
    assert take(harness, EVENT_CHANNEL) is None
    assert reply not in harness.ctx.receiver.targets


def test_a_client_gone_between_turns_sends_the_disconnect_at_once():
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    client.lose()
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 1, "state": b"S0"}
    assert take(harness, "http.disconnect") is None  # one disconnect, the consumer's, no plain 1.x one
    assert reply not in harness.ctx.receiver.targets


def test_a_client_gone_during_turn_0_gets_the_consumers_disconnect_if_a_consumer_answers():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    client.lose()
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/"}  # the 1.x one
    answer(client, reply, [], 0, b"S0")  # handle() joined a group and left the response open
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 1, "state": b"S0"}
    assert reply not in harness.ctx.receiver.targets


def test_a_client_gone_during_turn_0_that_a_view_answers_sends_one_disconnect():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    client.lose()
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/"}
    client.reply(reply, content=b"too late")
    assert take(harness, "http.disconnect") is None and reply not in harness.ctx.receiver.targets


def test_a_client_gone_during_turn_0_that_nothing_answers_is_forgotten_after_the_http_timeout():
    harness = HTTPHarness(http_timeout=30)
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    client.lose()
    take(harness, "http.disconnect")
    harness.advance(29)
    assert reply in harness.ctx.receiver.targets
    harness.advance(2)
    assert reply not in harness.ctx.receiver.targets


def test_a_500_before_anything_was_written_is_the_response():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    answer(client, reply, [{"status": 500, "headers": [], "content": b"Internal Server Error",
                            "more_content": False}], 0, end=True)
    assert client.status() == 500
    assert take(harness, "http.disconnect") is None


def test_a_500_after_the_head_cuts_the_response_short_and_sends_no_disconnect(caplog):
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    client.output()
    event(client, reply, type="boom")
    take(harness, EVENT_CHANNEL)
    with caplog.at_level(logging.WARNING, logger="interface_server"):
        answer(client, reply, [{"status": 500, "headers": [], "content": b"Internal Server Error",
                                "more_content": False}], 1, end=True)
    assert client.aborted and client.output() == b""
    assert "started a new response (500) in the middle of the 200" in caplog.text
    assert take(harness, "http.disconnect") is None  # the worker ran disconnect() itself: the consumer is done


def test_output_mid_turn_keeps_a_long_handler_alive_and_a_silent_one_is_given_up():
    harness = HTTPHarness(websocket_handler_timeout=10)
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    answer(client, reply, [{**HEAD, "content": b"0", "more_content": True}])  # handle() still running
    for n in range(1, 4):
        harness.advance(8)
        answer(client, reply, [{"content": b"%d" % n, "more_content": True}])
    assert not client.closed
    harness.advance(10.5)
    assert client.aborted  # ten silent seconds: its worker is taken to be dead
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 1, "state": None}


def test_an_event_turn_no_worker_answers_ends_the_response_and_the_disconnect_carries_the_last_state(caplog):
    harness = HTTPHarness(websocket_handler_timeout=10)
    client, reply = open_stream(harness)
    event(client, reply, text="one")
    take(harness, EVENT_CHANNEL)
    harness.advance(9.9)
    assert not client.closed
    with caplog.at_level(logging.WARNING, logger="interface_server.http_turns"):
        harness.advance(0.2)
    assert client.aborted
    assert "No worker answered turn 1 of /events/" in caplog.text
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 2, "state": b"S0"}
    answer(client, reply, [{"content": b"late", "more_content": True}], 1, b"S1")  # the worker was only slow
    assert take(harness, EVENT_CHANNEL) is None and take(harness, "http.disconnect") is None


def test_a_long_poll_with_nothing_written_is_answered_503_at_the_http_timeout_and_disconnected():
    harness = HTTPHarness(http_timeout=30)
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    answer(client, reply, [], 0, b"S0")  # handle() sent only its head, held by the worker
    harness.advance(29)
    assert client.output() == b""
    harness.advance(2)
    assert client.status() == 503 and client.closed
    assert take(harness, "http.disconnect") == {"reply_channel": reply, "path": "/events/", "turn": 1, "state": b"S0"}


def test_too_many_waiting_events_are_dropped():
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    event(client, reply, n=-1)
    for n in range(MAX_QUEUED_EVENTS + 5):
        event(client, reply, n=n)
    assert client.protocol.turns.events == MAX_QUEUED_EVENTS


def test_a_consumer_ending_without_completing_its_response_is_cut_short(caplog):
    harness = HTTPHarness()
    client, reply = open_stream(harness)
    client.output()
    with caplog.at_level(logging.WARNING, logger="interface_server.http_turns"):
        answer(client, reply, [], 0, end=True)
    assert client.aborted and "ended without completing its response" in caplog.text


def test_a_typed_event_for_a_view_already_answering_is_dropped():
    harness = HTTPHarness()
    client = harness.connect().send(GET)
    reply = client.request()["reply_channel"]
    client.reply(reply, content=b"part", more=True)
    event(client, reply, text="x")
    assert take(harness, EVENT_CHANNEL) is None and client.protocol.turns is None
