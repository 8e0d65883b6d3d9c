"""What an idle WebSocket keeps: its attributes in slots, not a per-connection dict; no request head."""

from __future__ import annotations

import gc
import tracemalloc

from autobahn.twisted.websocket import WebSocketServerProtocol

from interface_server.ws_framing import instance_slots

from .test_ws_limits import open_connection
from .test_ws_timeouts import Harness


def test_an_open_connection_keeps_its_attributes_out_of_an_instance_dict():
    harness = Harness()
    conn = open_connection(harness)
    proto = conn.protocol
    # Autobahn's ninety attributes and ours would make a 3.3 KB dict; only stragglers may land there.
    assert len(vars(proto)) <= 8, sorted(vars(proto))
    assert proto.head is None and proto.path == "/ws/room"  # the handshake's head is let go
    assert proto.inbound.sizes is None  # no deque until the client sends something


def test_slots_never_hide_a_class_attribute():
    class Base:
        default = 1

    assert instance_slots(Base, ("default", "fresh")) == ("fresh",)
    assert "transport" not in instance_slots(WebSocketServerProtocol, ("transport",))


def test_an_idle_connection_costs_under_eight_kilobytes_of_python_objects():
    harness = Harness()
    warm = [open_connection(harness) for _ in range(20)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        conns = [open_connection(harness) for _ in range(200)]
        for conn in conns:
            conn.transport.clear()
            harness.layer.receive(["websocket.connect"], block=False)
        gc.collect()
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(conns)
    finally:
        tracemalloc.stop()
    # 10.4 KB before the slots (StringTransport and the test's own objects included); 6 KB after.
    assert per_connection < 8000, f"{per_connection:.0f} bytes per idle connection"
    assert warm
