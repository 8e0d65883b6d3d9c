"""A layer outage (``LayerUnavailable``) at the protocol level: a clear close or status, not a log line per message."""

from __future__ import annotations

from asgi_backends.exceptions import LayerUnavailable
from asgi_backends.inmemory import ChannelLayer
from interface_server.ws_protocol import WSState

from .test_ws_limits import close_code_of, open_connection
from .test_ws_timeouts import OP_TEXT, Harness


class SwitchableLayer(ChannelLayer):
    """The in-memory layer, whose sends raise ``LayerUnavailable`` while ``down``."""

    down = False

    def send(self, channel, message):
        if self.down:
            raise LayerUnavailable("Redis at test is unreachable; the operation did not complete")
        return super().send(channel, message)


def test_a_frame_while_the_layer_is_down_closes_1013_without_an_error_line(caplog):
    layer = SwitchableLayer()
    harness = Harness(layer=layer)
    conn, idle = open_connection(harness), open_connection(harness)
    layer.down = True
    conn.send(OP_TEXT, b"hello")
    assert close_code_of(conn.frames()) == 1013  # try again later, as for a full channel
    assert idle.protocol.ws_state is WSState.OPEN  # a socket that sends nothing keeps going
    assert [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")] == []
    layer.down = False
    idle.send(OP_TEXT, b"after")
    assert layer.receive(["websocket.receive"])[1]["text"] == "after"


def test_a_disconnect_meeting_a_full_channel_is_retried_not_dropped():
    """A thousand sockets closing at once (a restart) must not lose their websocket.disconnect messages."""
    import threading
    import time

    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    from interface_server.sending import Sender

    from .test_ws_backpressure import ThreadClock

    layer = ChannelLayer(channel_capacity={"websocket.disconnect": 2})
    clock = ThreadClock()
    harness = Harness(layer=layer, clock=clock)
    conns = [open_connection(harness) for _ in range(6)]
    sender = harness.ctx.sender = Sender(layer, clock, threads=1, full_retry=5.0)
    for conn in conns:
        conn.protocol.connectionLost(Failure(ConnectionDone()))
    clock.advance(0)  # the reactor turn ends: the sender thread gets all six
    got = []

    def drain():  # a worker, slower than the closes
        deadline = time.monotonic() + 10
        while len(got) < 6 and time.monotonic() < deadline:
            channel, message = layer.receive(["websocket.disconnect"], block=True)
            if channel is not None:
                got.append(message["reply_channel"])

    reader = threading.Thread(target=drain)
    reader.start()
    reader.join(15)
    sender.close()
    assert sorted(got) == sorted(conn.reply_channel for conn in conns)
