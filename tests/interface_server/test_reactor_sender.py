"""The reactor-side sender: one batch per turn, a connection's order kept, full channels retried on the clock."""

from __future__ import annotations

import logging

from twisted.internet import defer, task

from asgi_backends.exceptions import ChannelFull, LayerUnavailable
from asgi_backends.inmemory import ChannelLayer
from interface_server.reactor_sender import ReactorSender


class Client:
    """A reactor client whose batches stay on their way until the test answers them."""

    def __init__(self):
        self.batches = []  # [(items, deferred)]

    def send_batch(self, items):
        deferred = defer.Deferred()
        self.batches.append((list(items), deferred))
        return deferred

    def answer(self, index=0, results=None):
        items, deferred = self.batches.pop(index)
        deferred.callback(results if results is not None else [None] * len(items))
        return items


class Flow:
    def __init__(self):
        self.done = 0

    def finished_here(self):
        self.done += 1

    def finished(self):  # the threaded sender's call: never made here
        raise AssertionError("finished() is for sender threads")


def make(full_retry=1.0):
    clock = task.Clock()
    client = Client()
    return ReactorSender(ChannelLayer(), client, clock, full_retry=full_retry), client, clock


def channels(items):
    return [channel for channel, _ in items]


def test_one_turn_is_one_batch_and_a_busy_connection_waits_for_its_last():
    sender, client, clock = make()
    sender.send(1, "websocket.receive", {"n": 1})
    sender.send(2, "http.request", {"n": 1})
    sender.send(1, "websocket.receive", {"n": 2})
    assert client.batches == []  # nothing before the turn ends
    clock.advance(0)
    assert [m["n"] for _, m in client.batches[0][0]] == [1, 1, 2]
    # Next turn: connection 1 is still waiting for its batch, connection 3 is not.
    sender.send(1, "websocket.disconnect", {"n": 3})
    sender.send(3, "websocket.receive", {"n": 1})
    clock.advance(0)
    assert len(client.batches) == 2 and channels(client.batches[1][0]) == ["websocket.receive"]
    assert sender.in_flight == 3
    client.answer(0)
    clock.advance(0)
    # Connection 1's disconnect goes once its earlier messages are done.
    assert channels(client.batches[-1][0]) == ["websocket.disconnect"]


def test_a_refused_message_is_retried_before_its_connections_later_ones():
    sender, client, clock = make(full_retry=1.0)
    flow = Flow()
    failures = []
    sender.send(1, "websocket.receive", {"n": 1}, failures.append, retry_full=True, flow=flow)
    sender.send(2, "websocket.receive", {"n": 9}, failures.append, retry_full=True)
    clock.advance(0)
    client.answer(0, [ChannelFull("full"), None])
    sender.send(1, "websocket.receive", {"n": 2}, failures.append, retry_full=True, flow=flow)
    sender.send(2, "websocket.receive", {"n": 10}, failures.append, retry_full=True)
    clock.advance(0)
    # Connection 2 goes on; connection 1's second frame waits behind the retry.
    assert [m["n"] for _, m in client.batches[0][0]] == [10]
    client.answer(0)
    assert flow.done == 0
    clock.advance(0.05)
    assert [m["n"] for _, m in client.batches[0][0]] == [1]
    client.answer(0)
    assert flow.done == 1
    clock.advance(0)
    assert [m["n"] for _, m in client.batches[0][0]] == [2]
    client.answer(0)
    assert flow.done == 2 and failures == []


def test_a_channel_still_full_at_the_deadline_reports_its_last_refusal():
    sender, client, clock = make(full_retry=0.2)
    failures = []
    sender.send(1, "websocket.receive", {"n": 1}, failures.append, retry_full=True)
    clock.advance(0)
    attempts = 0
    while client.batches or clock.getDelayedCalls():
        if client.batches:
            attempts += 1
            client.answer(0, [ChannelFull(f"full #{attempts}")])
        else:
            clock.advance(0.01)
    assert attempts > 2 and [str(f) for f in failures] == [f"full #{attempts}"]
    assert clock.seconds() >= 0.2 and sender.in_flight == 0


def test_a_refusal_without_retry_is_reported_at_once():
    sender, client, clock = make()
    failures = []
    sender.send(1, "websocket.connect", {"n": 1}, failures.append)
    clock.advance(0)
    client.answer(0, [ChannelFull("full")])
    assert len(failures) == 1 and sender.in_flight == 0 and not clock.getDelayedCalls()


def test_an_outage_is_one_warning_and_each_caller_hears_of_it(caplog):
    sender, client, clock = make()
    failures = []
    with caplog.at_level(logging.DEBUG, logger="interface_server"):
        for key in range(3):
            sender.send(key, "http.request", {"n": key}, failures.append)
            clock.advance(0)
            client.answer(0, [LayerUnavailable("Redis is down")])
        sender.send(9, "http.request", {"n": 9})  # no on_error: logged at debug only
        clock.advance(0)
        client.answer(0, [LayerUnavailable("Redis is down")])
    assert len(failures) == 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Redis is down" in warnings[0].getMessage()
    sender.send(1, "http.request", {"n": 1})
    clock.advance(0)
    with caplog.at_level(logging.INFO, logger="interface_server"):
        client.answer(0)
    assert any("back" in r.getMessage().lower() or "again" in r.getMessage().lower() for r in caplog.records)


def test_a_batch_is_at_most_max_batch_and_a_connection_is_not_split_across_two():
    sender, client, clock = make()
    for n in range(250):
        sender.send(n, "http.request", {"n": n})
    sender.send(0, "http.request", {"n": "again"})
    clock.advance(0)
    assert [len(items) for items, _ in client.batches] == [200, 50]
    client.answer(1)
    client.answer(0)
    clock.advance(0)
    assert [m["n"] for _, m in client.batches[0][0]] == ["again"]


def test_close_waits_for_what_is_on_its_way_then_gives_up_at_the_timeout():
    sender, client, clock = make()
    sender.send(1, "http.disconnect", {})
    closed = sender.close(timeout=2.0)
    assert len(client.batches) == 1 and not closed.called  # sent at once, not at the next turn
    client.answer(0)
    assert closed.called
    sender.send(2, "http.disconnect", {})
    clock.advance(0)
    late = sender.close(timeout=2.0)
    clock.advance(1.9)
    assert not late.called
    clock.advance(0.2)
    assert late.called


def answer_with_room(client, room):
    """Answer the oldest batch as the layer would: each channel takes up to ``room[channel]``, then refuses the rest."""
    items, deferred = client.batches.pop(0)
    results, taken = [], []
    for channel, message in items:
        if room.get(channel, 0) > 0:
            room[channel] -= 1
            results.append(None)
            taken.append(message["n"])
        else:
            room[channel] = 0  # refused once: every later message to it in the batch is refused too
            results.append(ChannelFull(f"{channel} is full"))
    deferred.callback(results)
    return items, taken


def test_a_retry_sends_a_full_channel_twice_what_it_took_and_the_rest_waits_in_order():
    sender, client, clock = make(full_retry=5.0)
    failures = []
    for key in range(180):  # a mass disconnect (one batch): far more than the channel takes
        sender.send(key, "websocket.disconnect", {"n": key}, failures.append, retry_full=True)
    clock.advance(0)
    delivered, sizes = [], []
    for room in (40, 10, None, None, None):
        while not client.batches:
            clock.advance(0.01)
        items, taken = answer_with_room(client, {"websocket.disconnect": 10_000 if room is None else room})
        sizes.append(len(items))
        delivered += taken
    # Each retry sends twice what the channel took the try before, not all that waits.
    assert sizes == [180, 80, 20, 40, 70]  # the last: all 70 left, under a window of 80
    assert delivered == list(range(180)) and failures == []
    assert sender.in_flight == 0 and not client.batches and not clock.getDelayedCalls()


def test_messages_that_waited_behind_the_window_get_the_refusal_at_the_deadline():
    sender, client, clock = make(full_retry=0.2)
    failures = []
    for key in range(100):
        sender.send(key, "websocket.disconnect", {"n": key}, failures.append, retry_full=True)
    clock.advance(0)
    sent = []
    while client.batches or clock.getDelayedCalls():
        if client.batches:
            sent.append(len(answer_with_room(client, {})[0]))
        else:
            clock.advance(0.01)
    assert sent[0] == 100 and max(sent[1:]) == 16  # a channel taking nothing gets 16 tries a retry
    assert len(failures) == 100 and all(isinstance(f, ChannelFull) for f in failures)
    assert sender.in_flight == 0
