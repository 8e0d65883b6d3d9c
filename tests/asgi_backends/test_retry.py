"""The ChannelFull retry policy at its edges, on a fake clock: no real time passes."""

from __future__ import annotations

import pytest

from asgi_backends.exceptions import ChannelFull, MessageTooLarge
from asgi_backends.retry import DEFAULT_POLICY, RetryPolicy, send_retrying


class FakeClock:
    """A clock that moves only when ``sleep`` is called; records the pauses."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a zero pause would be a busy loop"
        self.pauses.append(seconds)
        self.now += seconds


class FullLayer:
    """A layer whose ``send`` refuses the first ``refusals`` sends; records when each try came."""

    ChannelFull = ChannelFull

    def __init__(self, clock: FakeClock, refusals: float) -> None:
        self.clock = clock
        self.refusals = refusals
        self.tries: list[float] = []
        self.raised: list[ChannelFull] = []
        self.sent: list[tuple[str, dict]] = []

    def send(self, channel, message):
        self.tries.append(self.clock.now)
        if len(self.tries) <= self.refusals:
            exc = ChannelFull(f"refusal {len(self.tries)}")
            self.raised.append(exc)
            raise exc
        self.sent.append((channel, message))


class FakeStop:
    def __init__(self, clock: FakeClock, set_after: int) -> None:
        self.clock = clock
        self.set_after = set_after
        self.waits: list[float] = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        if len(self.waits) > self.set_after:
            return True
        self.clock.now += timeout
        return False


def run(layer, clock, policy, **kwargs):
    return send_retrying(layer, "full", {"n": 1}, policy, clock=clock, sleep=clock.sleep, random=lambda: 0.0, **kwargs)


def test_a_send_that_is_accepted_is_not_retried():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=0)
    run(layer, clock, DEFAULT_POLICY)
    assert layer.sent == [("full", {"n": 1})] and clock.pauses == []


def test_pauses_double_from_first_delay_up_to_max_delay():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=7)
    run(layer, clock, RetryPolicy(timeout=10, first_delay=0.01, max_delay=0.1))
    assert clock.pauses == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1])
    assert len(layer.sent) == 1


def test_a_channel_that_stays_full_raises_its_last_refusal_at_the_deadline():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=float("inf"))
    policy = RetryPolicy(timeout=1.0, first_delay=0.1, max_delay=0.4)
    with pytest.raises(ChannelFull) as raised:
        run(layer, clock, policy)
    assert raised.value is layer.raised[-1]
    # 0.1, 0.2, 0.4 and the last pause cut short to land on the deadline.
    assert clock.pauses == pytest.approx([0.1, 0.2, 0.4, 0.3])
    assert layer.tries[-1] == pytest.approx(layer.tries[0] + 1.0)  # the last try is at the deadline
    assert len(layer.tries) == 5


def test_the_deadline_counts_from_the_first_refusal():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=float("inf"))
    with pytest.raises(ChannelFull):
        run(layer, clock, RetryPolicy(timeout=0.5, first_delay=0.5, max_delay=0.5))
    assert layer.tries == [100.0, 100.5]


def test_timeout_zero_tries_once():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=1)
    with pytest.raises(ChannelFull):
        run(layer, clock, RetryPolicy(timeout=0))
    assert len(layer.tries) == 1 and clock.pauses == []


def test_other_errors_are_not_retried():
    clock = FakeClock()

    class TooLarge(FullLayer):
        def send(self, channel, message):
            self.tries.append(clock.now)
            raise MessageTooLarge("big")

    layer = TooLarge(clock, refusals=0)
    with pytest.raises(MessageTooLarge):
        run(layer, clock, DEFAULT_POLICY)
    assert len(layer.tries) == 1 and clock.pauses == []


def test_stop_ends_the_retries_and_the_pauses_are_spent_waiting_on_it():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=float("inf"))
    stop = FakeStop(clock, set_after=2)
    with pytest.raises(ChannelFull) as raised:
        run(layer, clock, RetryPolicy(timeout=10, first_delay=0.1, max_delay=1), stop=stop)
    assert raised.value is layer.raised[-1]
    assert stop.waits == pytest.approx([0.1, 0.2, 0.4]) and clock.pauses == []
    assert len(layer.tries) == 3  # none after the stop


def test_jitter_shortens_a_pause_by_at_most_its_share():
    policy = RetryPolicy(first_delay=0.1, max_delay=0.1, jitter=0.5)
    assert policy.delay(1, random=lambda: 0.0) == pytest.approx(0.1)
    assert policy.delay(1, random=lambda: 0.999999) == pytest.approx(0.05, abs=1e-6)
    assert RetryPolicy(jitter=0).delay(3, random=lambda: 0.9) == pytest.approx(0.02)
    real = [DEFAULT_POLICY.delay(1) for _ in range(200)]
    assert all(0.0025 < pause <= 0.005 for pause in real) and len(set(real)) > 1


def test_the_schedule_survives_huge_attempt_numbers():
    assert RetryPolicy(max_delay=3).delay(10**6, random=lambda: 0.0) == 3
    with pytest.raises(ValueError, match="from 1"):
        DEFAULT_POLICY.delay(0)


def test_backoff_hands_out_pauses_until_the_deadline():
    clock = FakeClock()
    backoff = RetryPolicy(timeout=0.25, first_delay=0.1, max_delay=1).backoff(clock, random=lambda: 0.0)
    assert backoff.deadline == pytest.approx(100.25)
    pauses = []
    while (pause := backoff.next_pause()) is not None:
        pauses.append(pause)
        clock.sleep(pause)
    assert pauses == pytest.approx([0.1, 0.15]) and backoff.retries == 2


@pytest.mark.parametrize(("fields", "error"), [
    ({"timeout": -1}, ValueError),
    ({"first_delay": 0}, ValueError),  # would spin
    ({"first_delay": 0.2, "max_delay": 0.1}, ValueError),
    ({"jitter": 1}, ValueError),  # a pause could be 0
    ({"jitter": -0.1}, ValueError),
    ({"timeout": "2"}, TypeError),
    ({"max_delay": True}, TypeError),
])
def test_policy_refuses_bad_fields(fields, error):
    with pytest.raises(error):
        RetryPolicy(**fields)


def test_policy_is_frozen():
    with pytest.raises(AttributeError):
        DEFAULT_POLICY.timeout = 5  # type: ignore[misc]


def test_send_retrying_against_a_real_layer_delivers_once_room_is_made():
    from asgi_backends.inmemory import ChannelLayer

    layer = ChannelLayer(capacity=1)
    layer.send("full", {"n": 0})
    clock = FakeClock()

    def sleep(seconds):  # the reader catches up during the second pause
        clock.sleep(seconds)
        if len(clock.pauses) == 2:
            assert layer.receive(["full"]) == ("full", {"n": 0})

    send_retrying(layer, "full", {"n": 1}, clock=clock, sleep=sleep)
    assert layer.receive(["full"]) == ("full", {"n": 1}) and len(clock.pauses) == 2


def test_the_try_after_a_cut_pause_is_the_last_even_if_the_pause_ends_early():
    clock = FakeClock()
    layer = FullLayer(clock, refusals=float("inf"))

    def early_sleep(seconds):
        clock.pauses.append(seconds)
        clock.now += seconds * 0.99

    with pytest.raises(ChannelFull):
        send_retrying(layer, "full", {}, RetryPolicy(timeout=0.3, first_delay=0.2, max_delay=0.2),
                      clock=clock, sleep=early_sleep, random=lambda: 0.0)
    assert clock.pauses == pytest.approx([0.2, 0.102]) and len(layer.tries) == 3


# -- Outage: the loops whose layer went away ---------------------------------------


def test_an_outage_logs_one_warning_and_one_recovery_line_with_growing_pauses(caplog):
    import logging

    from asgi_backends.exceptions import LayerUnavailable
    from asgi_backends.retry import RECONNECT_POLICY, Outage

    now = [100.0]
    outage = Outage(logging.getLogger("test.outage"), "Receiving", clock=lambda: now[0], random=lambda: 0.0)
    caplog.set_level(logging.DEBUG, logger="test.outage")
    outage.succeeded()  # nothing to end: silent
    pauses = []
    for _ in range(8):
        pauses.append(outage.failed(LayerUnavailable("Redis at 127.0.0.1:1 refused the connection")))
        now[0] += pauses[-1]
    assert pauses == [min(RECONNECT_POLICY.max_delay, 0.1 * 2 ** n) for n in range(8)]
    outage.succeeded()
    outage.succeeded()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2
    assert lines[0][0] == "WARNING" and "Receiving failed: Redis at 127.0.0.1:1 refused" in lines[0][1]
    assert lines[1] == ("WARNING", f"Receiving works again after {sum(pauses):.1f} s (8 failed tries)")
    assert not any(r.exc_info for r in caplog.records)  # an unreachable layer is not a bug: no traceback
    assert outage.failed(LayerUnavailable("again")) == 0.1  # a new outage starts the schedule over


def test_an_unexpected_error_gets_its_traceback_once(caplog):
    import logging

    from asgi_backends.retry import Outage

    outage = Outage(logging.getLogger("test.outage2"), "Receiving", random=lambda: 0.0)
    for _ in range(3):
        outage.failed(RuntimeError("a bug"))
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1 and with_traceback[0].levelname == "ERROR"


def test_a_worker_logs_an_outage_once_however_many_threads_retry(caplog):
    import logging
    import threading

    from asgi_backends.exceptions import LayerUnavailable
    from asgi_backends.inmemory import ChannelLayer
    from tests.support.waiting import wait_until
    from worker import Worker

    class Flaky(ChannelLayer):
        """Down for the first six receives, then up."""

        def __init__(self):
            super().__init__(blocking_timeout=0.05)
            self.calls = 0
            self.lock = threading.Lock()

        def receive(self, channels, block=False):
            with self.lock:
                self.calls += 1
                down = self.calls <= 6
            if down:
                raise LayerUnavailable("Redis is restarting")
            return super().receive(channels, block)

    class Router:
        channels = {"jobs"}

        def match(self, message):
            return (lambda message: done.append(message["n"])), {}

    done = []
    layer = Flaky()
    caplog.set_level(logging.INFO, logger="worker.worker")
    worker = Worker(layer, Router(), threads=3, signal_handlers=False)
    worker.start()
    try:
        layer.send("jobs", {"n": 1})
        wait_until(lambda: done == [1], 20, what="the job after the outage")
    finally:
        worker.stop()
        worker.join(5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "Redis is restarting" in warnings[0] and "works again" in warnings[1]
