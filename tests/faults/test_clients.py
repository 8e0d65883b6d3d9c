"""The fault harness's open-loop HTTP schedule: on time, and no catch-up burst after a stall."""

from __future__ import annotations

from benchmarks.faults.clients import MAX_LAG, Schedule


def test_sends_are_spaced_by_the_rate():
    schedule = Schedule(rate=100, start=10.0)
    assert schedule.wait(10.0) == 0
    assert schedule.take() == 1
    assert abs(schedule.wait(10.0) - 0.01) < 1e-9
    assert abs(schedule.wait(10.004) - 0.006) < 1e-9
    assert schedule.wait(10.01) == 0
    assert schedule.take() == 2
    assert schedule.late == 0


def test_a_small_lag_is_caught_up():
    schedule = Schedule(rate=100, start=0.0)
    at = MAX_LAG - 0.001  # just inside the lag allowed: every missed slot is still sent
    taken = 0
    while schedule.wait(at) == 0:
        schedule.take()
        taken += 1
    assert taken == 5  # slots at 0, 0.01, ..., 0.04
    assert schedule.late == 0


def test_a_stall_skips_the_missed_slots_instead_of_bursting():
    schedule = Schedule(rate=100, start=0.0)
    at = 1.0  # a client that was starved for a second
    assert schedule.wait(at) == 0
    first = schedule.take()
    assert schedule.late == 100  # the slots of 0 .. 0.99 s
    assert first == 101
    assert schedule.wait(at) > 0  # and the next one waits its turn, no burst
    assert abs(schedule.wait(at) - 0.01) < 1e-9
