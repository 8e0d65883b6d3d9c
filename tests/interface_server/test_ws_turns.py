"""Connections served by Channels 2-4 consumers on workers: one event at a time, with the state (raw bytes in).

Driven like the timeout tests: a StringTransport, a task.Clock, inline sends,
the in-memory layer; the test plays the worker.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from interface_server.turns import EVENT_CHANNEL, MAX_QUEUED_EVENTS
from interface_server.ws_protocol import WSState
from tests.interface_server.test_ws_timeouts import OP_CLOSE, OP_TEXT, Harness


def take(layer, channel):
    name, message = layer.receive([channel], block=False)
    return message if name == channel else None


def serial_connection(harness, state=b"S0"):
    conn = harness.connect()
    conn.reply({"replies": [{"accept": True}, {"text": "welcome"}], "handled": 0, "state": state})
    assert conn.transport.value().startswith(b"HTTP/1.1 101 ")
    conn.transport.clear()
    return conn


def test_answer_accepts_and_frames_go_one_at_a_time_with_the_state():
    harness = Harness()
    layer = harness.layer
    conn = serial_connection(harness)
    assert conn.protocol.turns.serial
    conn.send(OP_TEXT, b"one")
    conn.send(OP_TEXT, b"two")
    first = take(layer, "websocket.receive")
    assert first["text"] == "one" and first["state"] == b"S0" and first["turn"] == 1
    assert first["keeps_state"] is True  # the worker may leave an unchanged state out of its answer
    assert take(layer, "websocket.receive") is None  # "two" waits for the answer to "one"
    conn.reply({"replies": [{"text": "ONE"}], "handled": 1, "state": b"S1"})
    second = take(layer, "websocket.receive")
    assert second["text"] == "two" and second["state"] == b"S1" and second["turn"] == 2
    assert (OP_TEXT, b"ONE") in conn.frames()


def test_an_answer_without_state_keeps_the_last_one():
    harness = Harness()
    layer = harness.layer
    conn = serial_connection(harness)
    conn.send(OP_TEXT, b"one")
    conn.send(OP_TEXT, b"two")
    conn.send(OP_TEXT, b"three")
    assert take(layer, "websocket.receive")["state"] == b"S0"
    conn.reply({"replies": [{"text": "ONE"}], "handled": 1})  # the handler changed nothing
    assert take(layer, "websocket.receive")["state"] == b"S0"
    conn.reply({"replies": [], "handled": 2, "state": b"S2"})
    assert take(layer, "websocket.receive")["state"] == b"S2"


def test_typed_events_queue_behind_frames_and_go_to_the_event_channel():
    harness = Harness()
    layer = harness.layer
    conn = serial_connection(harness)
    conn.send(OP_TEXT, b"hi")
    conn.reply({"type": "chat.message", "message": "from the group"})
    assert take(layer, "websocket.receive")["text"] == "hi"
    assert take(layer, EVENT_CHANNEL) is None
    conn.reply({"replies": [], "handled": 1, "state": b"S1"})
    event = take(layer, EVENT_CHANNEL)
    assert event["event"] == {"type": "chat.message", "message": "from the group"}
    assert event["state"] == b"S1" and event["reply_channel"] == conn.reply_channel and event["path"] == "/ws/room"


def test_events_during_the_handshake_wait_for_the_connect_answer():
    harness = Harness()
    conn = harness.connect()
    conn.reply({"type": "chat.message", "message": "early"})
    assert take(harness.layer, EVENT_CHANNEL) is None
    conn.reply({"replies": [{"accept": True}], "handled": 0, "state": b"S0"})
    assert take(harness.layer, EVENT_CHANNEL)["event"]["message"] == "early"


def test_too_many_waiting_events_are_dropped():
    harness = Harness()
    conn = serial_connection(harness)
    conn.send(OP_TEXT, b"busy")
    for n in range(MAX_QUEUED_EVENTS + 5):
        conn.reply({"type": "tick", "n": n})
    assert conn.protocol.turns.events == MAX_QUEUED_EVENTS


def test_disconnect_waits_for_the_turn_in_flight_and_carries_its_state():
    harness = Harness()
    layer = harness.layer
    conn = serial_connection(harness)
    conn.send(OP_TEXT, b"last words")
    take(layer, "websocket.receive")
    conn.reply({"type": "dropped.when.closed"})
    conn.send(OP_CLOSE, b"\x03\xe8")
    if conn.protocol.ws_state is not WSState.CLOSED:
        conn.protocol.connectionLost(Failure(ConnectionDone()))
    assert take(layer, "websocket.disconnect") is None  # the worker still has "last words"
    conn.reply({"replies": [{"text": "too late"}], "handled": 1, "state": b"S1"})
    disconnect = take(layer, "websocket.disconnect")
    assert disconnect["state"] == b"S1" and disconnect["code"] == 1000
    assert take(layer, EVENT_CHANNEL) is None  # events queued for a closed socket are dropped
    assert conn.reply_channel not in harness.ctx.receiver.targets


def test_a_turn_nobody_answers_closes_1011_and_the_disconnect_has_the_last_state():
    harness = Harness(websocket_handler_timeout=5.0)
    layer = harness.layer
    conn = serial_connection(harness)
    conn.send(OP_TEXT, b"to a worker that dies")
    take(layer, "websocket.receive")
    harness.advance_to(4.0)
    assert conn.close_code() is None
    harness.advance_to(6.0)
    assert conn.close_code() == 1011
    disconnect = conn.finish_close()
    assert disconnect["state"] == b"S0" and disconnect["code"] == 1011


def test_a_1x_connection_is_untouched_and_ignores_typed_events():
    harness = Harness()
    conn = harness.connect()
    conn.accept()
    assert not conn.protocol.turns.serial
    conn.reply({"type": "chat.message"})
    conn.send(OP_TEXT, b"a")
    conn.send(OP_TEXT, b"b")
    first, second = take(harness.layer, "websocket.receive"), take(harness.layer, "websocket.receive")
    assert (first["text"], second["text"]) == ("a", "b") and "state" not in first
    assert take(harness.layer, EVENT_CHANNEL) is None


def test_accept_may_choose_an_offered_subprotocol():
    harness = Harness()
    conn = harness.connect()  # a plain handshake offers no subprotocol
    conn.reply({"replies": [{"accept": True, "subprotocol": "not.offered"}], "handled": 0, "state": b""})
    assert b"Sec-WebSocket-Protocol" not in conn.transport.value()


def test_an_event_the_layer_cannot_take_is_dropped_and_the_socket_stays_open(caplog):
    from asgi_backends.inmemory import ChannelLayer

    harness = Harness(layer=ChannelLayer(channel_capacity={EVENT_CHANNEL: 1}))
    layer = harness.layer
    conn = serial_connection(harness)
    layer.send(EVENT_CHANNEL, {"filler": True})
    conn.reply({"type": "chat.message"})
    assert conn.protocol.turns.in_flight is None  # the refused event freed the slot
    assert conn.protocol.ws_state is WSState.OPEN
    assert "Dropping a typed event" in caplog.text
    conn.send(OP_TEXT, b"still served")
    assert take(layer, "websocket.receive")["text"] == "still served"


def close_during_handshake(harness, conn):
    conn.protocol.connectionLost(Failure(ConnectionDone()))
    message = take(harness.layer, "websocket.disconnect")
    assert message is not None and "state" not in message  # the 1.x disconnect goes at once


def test_closed_during_the_handshake_a_1x_answer_lets_go_at_once():
    harness = Harness()
    conn = harness.connect()
    close_during_handshake(harness, conn)
    assert conn.reply_channel in harness.ctx.receiver.targets  # a 2-4 consumer might still answer
    conn.reply({"accept": True})
    assert conn.reply_channel not in harness.ctx.receiver.targets


def test_closed_during_the_handshake_a_2_4_answer_gets_a_disconnect_with_its_state():
    harness = Harness()
    conn = harness.connect()
    close_during_handshake(harness, conn)
    conn.reply({"replies": [{"accept": True}], "handled": 0, "state": b"S0"})
    assert take(harness.layer, "websocket.disconnect")["state"] == b"S0"
    assert conn.reply_channel not in harness.ctx.receiver.targets


def test_closed_during_the_handshake_and_never_answered_is_let_go_after_the_connect_timeout():
    harness = Harness(websocket_connect_timeout=2.0)
    conn = harness.connect()
    close_during_handshake(harness, conn)
    harness.clock.advance(2.6)
    assert conn.reply_channel not in harness.ctx.receiver.targets
