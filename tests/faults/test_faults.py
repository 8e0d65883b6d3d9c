"""The fault harness's scenarios, at test size, against real processes (``benchmarks/faults``).

Each test starts its own redis-server (or master, replica and sentinel),
one interface server and two workers, loads them from client processes,
injects one fault and checks the guarantees the scenario's table reports:
nothing dropped that should stay up, nothing duplicated, loss bounded by
what a killed worker held, recovery within its bound. Speeds (p99 ratios,
the accepted latency under overload, RSS slopes) are measured but not
asserted: this machine's two shared cores make them noise in a test.
"""

from __future__ import annotations

import pytest

from benchmarks.faults.scenarios import SCENARIOS, TEST

pytestmark = pytest.mark.slow


def run(name, tmp_path, *checks):
    table = SCENARIOS[name](TEST, tmp_path / name)
    missed = [check for check in checks if not table.met(check)]
    assert not missed, f"missed {missed}:\n{table.render()}"
    return table


def test_rolling_deploy_drops_no_socket_and_loses_nothing(tmp_path):
    run("rolling", tmp_path, "http_errors", "dropped", "lost", "duplicated", "exit_status")


def test_sigkill_loses_only_what_the_worker_held(tmp_path):
    run("sigkill", tmp_path, "held", "lost_bound", "lost_elsewhere", "at_timeout", "dropped", "duplicated")


def test_redis_restart_gives_clear_errors_then_every_process_resumes(tmp_path):
    run("redis", tmp_path, "only_503", "fast_errors", "clear_close", "room_kept", "resumed", "log_lines", "alive")


def test_sentinel_failover_is_followed_by_every_process(tmp_path):
    run("sentinel", tmp_path, "only_503", "clear_close", "room_kept", "resumed", "log_lines", "alive")


@pytest.mark.parametrize("name", ["restart", "handover"])
def test_interface_server_restart_closes_1001_and_every_socket_reconnects(tmp_path, name):
    run(name, tmp_path, "close_1001", "reconnected", "exit_status", "echo_lost", "http_errors", "disconnects")


def test_overload_refuses_with_503_and_1013_only_and_drains(tmp_path):
    run("overload", tmp_path, "only_503", "only_1013", "refused_503", "recovered", "drained", "alive", "duplicated")


def test_soak_returns_keys_and_file_descriptors_to_their_baseline(tmp_path):
    run("soak", tmp_path, "churn_ok", "keys_back", "fds_back", "alive")
