"""The seven fault scenarios: each starts a fresh deployment, loads it, injects one fault, and returns a Table.

Every scenario is a function ``(profile, logdir) -> Table``; the
:class:`Profile` sets the load and the durations (``FULL``, ``QUICK``, and
``TEST`` for the test suite). Targets are checked in the table (``ok`` /
``MISSED``); ``Table.failures`` lists the ones missed. Waiting is on
conditions (a log line, a port, a journal entry, a key count) with
deadlines; the only plain sleeps are the load running for as long as a
phase lasts.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .report import (
    Table,
    echo_summary,
    first_answer_by_pid,
    fmt,
    http_summary,
    recovery_time,
    room_summary,
    statuses,
)
from .stack import Deployment, Load, Proc, process_sample, wait_until

now = time.monotonic

POOL_GROWTH = 2
"""Descriptors a process may keep beyond its soak baseline: connections its Redis pool opened once."""


@dataclass(frozen=True)
class Profile:
    """How much load and how long, for every scenario."""

    name: str
    workers: int = 2
    threads: int = 1
    prefetch: int = 1
    http_rate: float = 40.0          # requests/s of the steady HTTP load
    work_ms: int = 5                 # what each HTTP consumer spends (it is mid-work when a fault comes)
    kill_work_ms: int = 20           # ... in the SIGKILL scenario
    echo_sockets: int = 20
    echo_interval: float = 0.1       # s between a socket's echoes
    room_sockets: int = 10           # idle sockets in a broadcast group
    broadcast_rate: float = 2.0      # broadcasts/s to them
    baseline: float = 4.0            # s of load before the fault
    settle: float = 6.0              # s of load after the fault cleared
    http_timeout: float = 5.0        # the interface server's --http-timeout
    redis_down: float = 5.0          # s Redis stays down
    sentinels: int = 1
    restart_sockets: int = 100
    restart_interval: float = 2.0    # s between each restarting socket's echoes
    overload_seconds: float = 8.0
    # The load after the overload, as a fraction of the capacity measured first. The test profile
    # offers a quarter: on two shared cores a neighbour can take half the CPU between the
    # calibration and this phase, and "half the capacity" would then be all of it.
    recovery_load: float = 0.5
    soak_seconds: float = 180.0
    soak_warmup: float = 60.0
    sample_interval: float = 10.0
    connect_capacity: int | None = None  # websocket.connect's capacity (None: the layer's 100)


FULL = Profile("full", baseline=20, settle=20, http_timeout=10, sentinels=3, restart_sockets=1000,
               restart_interval=5.0, overload_seconds=30, soak_seconds=1800, soak_warmup=120)
QUICK = Profile("quick")
TEST = Profile("test", http_rate=25, echo_sockets=8, room_sockets=5, baseline=3, settle=4, redis_down=3,
               restart_sockets=20, overload_seconds=4, recovery_load=0.25, soak_seconds=30, soak_warmup=10, sample_interval=5)


# -- shared pieces ---------------------------------------------------------------------


class Run:
    """One scenario's deployment, loads and log marks."""

    def __init__(self, profile: Profile, logdir: Path, **deployment: Any) -> None:
        self.p = profile
        if logdir.exists():
            shutil.rmtree(logdir)  # a journal left by an earlier run would count as duplicates
        logdir.mkdir(parents=True)
        options = {"workers": profile.workers, "threads": profile.threads, "prefetch": profile.prefetch,
                   "http_timeout": profile.http_timeout, "connect_capacity": profile.connect_capacity}
        options.update(deployment)
        self.d = Deployment(logdir, **options)
        self.loads: list[Load] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.marks: dict[str, int] = {}
        self.procs: list[Proc] = []

    def __enter__(self) -> Run:
        self.d.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for load in self.loads:
            load.kill()
        self.d.close()

    def load(self, kind: str, name: str, **config: Any) -> Load:
        load = Load(self.d, kind, name, **config)
        self.loads.append(load)
        return load

    def standard_load(self, work_ms: int | None = None, http_rate: float | None = None) -> None:
        """HTTP (a consumer spending ``work_ms``), echo, an idle broadcast room and its broadcasts."""
        p = self.p
        started = [
            self.load("http", "h", rate=http_rate or p.http_rate, timeout=p.http_timeout * 3,
                      query=f"ms={p.work_ms if work_ms is None else work_ms}"),
            self.load("echo", "e", count=p.echo_sockets, interval=p.echo_interval, timeout=max(5.0, p.http_timeout)),
            self.load("room", "r", count=p.room_sockets),
        ]
        for load in started:
            load.wait_ready()
        broadcast = self.load("http", "b", rate=p.broadcast_rate, path="/broadcast/", timeout=p.http_timeout * 3)
        broadcast.wait_ready()
        self.mark()

    def mark(self) -> None:
        """From now on, count log lines."""
        for proc in self.d.processes():
            self.watch(proc)

    def watch(self, proc: Proc) -> None:
        if proc not in self.procs:
            self.procs.append(proc)
            self.marks[proc.name] = proc.lines()

    def start_worker(self) -> Proc:
        worker = self.d.start_worker()
        self.watch(worker)
        return worker

    def stop_loads(self) -> None:
        for load in self.loads:
            if load.result is None:
                self.results[load.name] = load.stop()

    def of(self, *names: str) -> list[dict[str, Any]]:
        return [self.results[name] for name in names if name in self.results]

    def log_lines(self) -> dict[str, list[str]]:
        """Each watched process's log lines since it was marked."""
        return {proc.name: proc.lines_since(self.marks[proc.name]) for proc in self.procs}

    def journal_duplicates(self) -> int:
        """Keys a consumer started more than once, over every worker's journal."""
        starts = Counter(key for entries in self.d.journal_entries().values() for event, key in entries if event == "S")
        return sum(n - 1 for n in starts.values() if n > 1)

    def hold(self, seconds: float) -> None:
        """Let the load run for ``seconds`` (the phase's length; nothing to wait for)."""
        time.sleep(seconds)


def add_common(table: Table, run: Run, window: tuple[float, float] | None = None) -> dict[str, Any]:
    """The rows every scenario has: HTTP, echo, room, duplicates, log lines. Returns the summaries."""
    http = http_summary(run.of("h", "b"), window)
    echo = echo_summary(run.of("e"), window)
    rooms = room_summary(run.of("r"), run.of("b"), window=window)
    table.add("HTTP attempted / answered", f"{http.attempted} / {http.answered}")
    table.add("HTTP failed (by status)", statuses(http.failed))
    table.add("HTTP p50 / p99", f"{fmt(http.p(0.5))} / {fmt(http.p(0.99))}")
    table.add("WS round trips attempted / answered", f"{echo.attempted} / {echo.answered}")
    table.add("WS p50 / p99", f"{fmt(echo.p(0.5))} / {fmt(echo.p(0.99))}")
    table.add("WebSockets dropped (by close code)", statuses(echo.dropped) + f"; room {rooms['dropped']}")
    if echo.refused:
        table.add("WS handshakes refused (by status)", statuses(echo.refused))
    duplicates = echo.duplicated + rooms["duplicated"] + run.journal_duplicates()
    table.add("messages lost / cut by a close / duplicated / out of order",
              f"{echo.lost} / {echo.cut} / {duplicates} / {echo.out_of_order}")
    table.add("broadcasts delivered / expected", f"{rooms['delivered']} / {rooms['expected']}")
    return {"http": http, "echo": echo, "rooms": rooms, "duplicates": duplicates}


def add_log_lines(table: Table, run: Run, show: bool = False) -> dict[str, list[str]]:
    lines = run.log_lines()
    table.add("log lines per process", ", ".join(f"{name} {len(found)}" for name, found in lines.items()))
    if show:
        for name, found in lines.items():
            for line in found[:12]:
                table.figures.setdefault("log", []).append(f"{name}: {line[:200]}")
            if len(found) > 12:
                table.figures.setdefault("log", []).append(f"{name}: ... {len(found) - 12} more")
    return lines


def warnings_in(lines: list[str]) -> int:
    return sum(1 for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line)


def ratio(during: float | None, before: float | None) -> str:
    """`` (1.4×)`` for a figure against its baseline, or nothing."""
    return f" ({during / before:.1f}×)" if during and before else ""


def ratio_ok(during: float | None, before: float | None, factor: float = 2.0, floor: float = 0.01) -> bool:
    """``during`` within ``factor`` × ``before``, or under ``2 × floor`` (a 20 ms p99 is scheduling noise here)."""
    if during is None or before is None:
        return True
    return during <= factor * max(before, floor)


# -- 1. rolling deploy -----------------------------------------------------------------


def rolling_deploy(p: Profile, logdir: Path) -> Table:
    """Each worker in turn: a new one starts, the old one gets SIGTERM, finishes what it holds and exits."""
    table = Table(f"1. Rolling deploy of {p.workers} workers (SIGTERM, one at a time) under HTTP and echo load")
    with Run(p, logdir) as run:
        run.standard_load()
        t0 = now()
        run.hold(p.baseline)
        t_fault = now()
        exits = []
        for old in list(run.d.workers):
            run.start_worker()
            signalled = now()
            old.signal(signal.SIGTERM)
            code = old.wait(60)
            exits.append((code, now() - signalled))
            run.d.retire(old)
        t_done = now()
        run.hold(p.settle)
        run.stop_loads()
        journal = run.d.journal_entries()
        retired = {proc.pid for proc in run.d.retired}
    figures = add_common(table, run)
    before = http_summary(run.of("h"), (t0, t_fault)), echo_summary(run.of("e"), (t0, t_fault))
    during = http_summary(run.of("h"), (t_fault, t_done)), echo_summary(run.of("e"), (t_fault, t_done))
    http, echo = figures["http"], figures["echo"]
    table.rows = [row for row in table.rows if not row.measure.startswith(("HTTP p50", "WS p50"))]
    table.add("HTTP errors", sum(http.failed.values()), "0", not http.failed, key="http_errors")
    table.add("WebSockets dropped", sum(echo.dropped.values()) + figures["rooms"]["dropped"], "0",
              not echo.dropped and not figures["rooms"]["dropped"], key="dropped")
    unfinished = sum(1 for pid in retired for key in started_not_ended(journal.get(pid, [])))
    table.add("messages lost (echo unanswered + broadcasts missed + started, never finished)",
              echo.lost + echo.cut + figures["rooms"]["lost"] + unfinished, "0",
              echo.lost + echo.cut + figures["rooms"]["lost"] + unfinished == 0, key="lost")
    table.add("duplicated", figures["duplicates"], "0", figures["duplicates"] == 0, key="duplicated")
    table.add("HTTP p99 before / during deploy", f"{fmt(before[0].p(0.99))} / {fmt(during[0].p(0.99))}"
              f"{ratio(during[0].p(0.99), before[0].p(0.99))}",
              "during ≤ 2× before (or ≤ 20 ms)", ratio_ok(during[0].p(0.99), before[0].p(0.99)), key="http_p99")
    table.add("WS p99 before / during deploy", f"{fmt(before[1].p(0.99))} / {fmt(during[1].p(0.99))}"
              f"{ratio(during[1].p(0.99), before[1].p(0.99))}",
              "during ≤ 2× before (or ≤ 20 ms)", ratio_ok(during[1].p(0.99), before[1].p(0.99)), key="ws_p99")
    table.add("old workers' exit status / time from SIGTERM",
              ", ".join(f"{code} / {fmt(seconds)}" for code, seconds in exits), "0", all(c == 0 for c,
              _ in exits), key="exit_status")
    table.add("deploy took", t_done - t_fault)
    table.add("time to full recovery", recovery_time(run.of("h", "b"), run.of("e"), t_done, t_fault), "0")
    add_log_lines(table, run)
    return table


def started_not_ended(entries: list[tuple[str, str]]) -> set[str]:
    started = {key for event, key in entries if event == "S"}
    return started - {key for event, key in entries if event == "E"}


# -- 2. SIGKILL mid-consumer -----------------------------------------------------------------


def sigkill_worker(p: Profile, logdir: Path) -> Table:
    """SIGKILL one worker while a consumer runs in it; a replacement starts; count what was lost."""
    bound = p.threads + p.prefetch
    table = Table(f"2. SIGKILL of a worker mid-consumer (HTTP consumers of {p.kill_work_ms} ms, "
                  f"--threads {p.threads} --prefetch {p.prefetch})")
    with Run(p, logdir) as run:
        run.standard_load(work_ms=p.kill_work_ms)
        run.hold(p.baseline)
        victim = run.d.workers[0]
        journal = run.d.journal / f"journal-{victim.pid}.log"

        def mid_consumer() -> bool:
            lines = journal.read_text().splitlines() if journal.exists() else []
            return bool(lines) and lines[-1].startswith("S ")

        wait_until(mid_consumer, 20, "the victim in the middle of a consumer", interval=0.001)
        victim.signal(signal.SIGKILL)
        t_kill = now()
        victim.wait(10)
        run.d.retire(victim)
        run.start_worker()
        run.hold(p.http_timeout + p.settle)
        run.stop_loads()
        entries = run.d.journal_entries()
    figures = add_common(table, run)
    echo = figures["echo"]
    held = started_not_ended(entries.get(victim.pid, []))
    failed = [r for result in run.of("h", "b") for r in result["records"] if r[2] != 200]
    at_timeout = [r for r in failed if r[2] == 503 and r[1] - r[0] >= p.http_timeout - 0.5]
    survivors = {key for pid, found in entries.items() if pid != victim.pid for event, key in found}
    lost_keys = {r[4] for r in failed} | {m[0] for result in run.of("e") for s in result["sockets"]
                                          for m in s["msgs"] if m[2] is None}
    lost = len(lost_keys)
    table.add("messages the killed consumer had started (journal)", len(held), f"≤ {p.threads}",
              len(held) <= p.threads, key="held")
    table.add("messages lost (HTTP failed + echo unanswered)", lost, f"≤ threads + prefetch = {bound}",
              lost <= bound, key="lost_bound")
    table.add("... of them seen by a surviving worker", len(lost_keys & survivors), "0",
              not lost_keys & survivors, key="lost_elsewhere")
    table.add("HTTP failures that are 503 at --http-timeout", f"{len(at_timeout)} of {len(failed)}",
              "all", len(at_timeout) == len(failed), key="at_timeout")
    table.add("WebSockets dropped", sum(echo.dropped.values()) + figures["rooms"]["dropped"], "0",
              not echo.dropped and not figures["rooms"]["dropped"], key="dropped")
    table.add("duplicated", figures["duplicates"], "0", figures["duplicates"] == 0, key="duplicated")
    answered_by = max((r[1] for r in failed), default=t_kill) - t_kill
    table.add("the kill → its last lost request answered (503)", answered_by,
              f"≤ http-timeout ({p.http_timeout:g} s) + 1 s", answered_by <= p.http_timeout + 1, key="answered_by")
    table.add("time to full recovery (from the kill)", recovery_time(run.of("h", "b"), run.of("e"), t_kill, t_kill))
    add_log_lines(table, run)
    return table


# -- 3 and 4. Redis restart, Sentinel failover -------------------------------------------------


def outage_rows(table: Table, run: Run, t_down: float, t_up: float, what: str) -> None:
    """The rows of a Redis outage: what clients saw while it lasted, and when each process resumed."""
    p = run.p
    figures = add_common(table, run)
    # Requests queued in Redis (or held by a worker) when it went away are lost with it: their
    # clients get 503 at --http-timeout. Those started after it was gone must fail at once.
    in_flight = [r for result in run.of("h", "b") for r in result["records"]
                 if r[2] != 200 and r[0] < t_down and r[1] >= t_down]
    table.add("HTTP in flight when the fault hit (lost: 503 at --http-timeout)", len(in_flight))
    out = http_summary(run.of("h"), (t_down, t_up))
    echo_out = echo_summary(run.of("e"), (t_down, t_up + 1))
    rooms = figures["rooms"]
    table.add(f"HTTP while {what}: answered / failed", f"{out.answered} / {statuses(out.failed)}",
              "503 only", set(out.failed) <= {503}, key="only_503")
    table.add(f"HTTP failures while {what}: p99 time to the error", fmt(percentile_of(out.failure_latencies, 0.99)),
              "at once (< 1 s)", (percentile_of(out.failure_latencies, 0.99) or 0) < 1.0, key="fast_errors")
    table.add(f"echo sockets closed while {what} (by code)", statuses(echo_out.dropped), "a clear code, not 1006",
              1006 not in echo_out.dropped, key="clear_close")
    table.add("idle (room) sockets dropped", rooms["dropped"], "0", rooms["dropped"] == 0, key="room_kept")
    after = [(pid, t - t_up) for pid, t in sorted(first_answer_by_pid(run.of("h"), t_up).items())]
    resumed = [seconds for _pid, seconds in after]
    table.add(f"first HTTP answer after {what.split()[0]} answered again, per worker",
              ", ".join(fmt(seconds) for seconds in resumed) or "none",
              "≤ 2 s each", len(resumed) >= p.workers and max(resumed) <= 2.0, key="resumed")
    table.add("time to full recovery", recovery_time(run.of("h", "b"), run.of("e"), t_up, t_down), "≤ 2 s")
    lines = add_log_lines(table, run, show=True)
    worst = max((warnings_in(found) for found in lines.values()), default=0)
    table.add("warnings/errors logged, most by one process", worst, "≤ 2 (gone, back)", worst <= 2, key="log_lines")


def percentile_of(values: list[float], fraction: float) -> float | None:
    from .report import percentile

    return percentile(values, fraction)


def redis_restart(p: Profile, logdir: Path) -> Table:
    """Stop Redis, keep it down ``redis_down`` seconds, start it again empty."""
    table = Table(f"3. Redis restart ({p.redis_down:g} s down, back empty) under load")
    with Run(p, logdir) as run:
        run.standard_load()
        run.hold(p.baseline)
        run.d.redis.stop()
        t_down = now()  # gone: its process has exited
        run.hold(p.redis_down)
        run.d.redis.start()
        t_up = now()
        run.hold(p.settle)
        run.stop_loads()
        alive = all(proc.alive() for proc in run.d.processes()) and len(run.d.processes()) == 1 + p.workers
    outage_rows(table, run, t_down, t_up, "Redis was down")
    table.add("processes alive afterwards", "all" if alive else "NOT all", "all", alive, key="alive")
    return table


def sentinel_failover(p: Profile, logdir: Path) -> Table:
    """SIGKILL the master; Sentinel promotes the replica; every process follows."""
    table = Table(f"4. Sentinel failover (master SIGKILLed; {p.sentinels} sentinel(s), replica promoted) under load")
    with Run(p, logdir, sentinels=p.sentinels) as run:
        run.standard_load()
        run.hold(p.baseline)
        sentinel = run.d.sentinel
        old = sentinel.master.port
        sentinel.master.stop(signal.SIGKILL)
        t_down = now()
        wait_until(lambda: sentinel.master_port() not in (None, old), 30, "a new master", interval=0.05)
        t_up = now()
        run.hold(p.settle)
        run.stop_loads()
        alive = all(proc.alive() for proc in run.d.processes()) and len(run.d.processes()) == 1 + p.workers
    table.add("master killed → replica promoted", t_up - t_down)
    outage_rows(table, run, t_down, t_up, "failing over")
    table.add("processes alive afterwards", "all" if alive else "NOT all", "all", alive, key="alive")
    return table


# -- 5. interface server restart ---------------------------------------------------------------


def server_restart(p: Profile, logdir: Path, handover: bool = False) -> Table:
    """SIGTERM the interface server; a new one takes over the listening socket; the clients reconnect.

    With ``handover`` the new server starts first, so two accept on the
    socket for a moment; otherwise the new one starts once the old one has
    exited (a plain ``systemctl restart``).
    """
    how = "new one started first, then SIGTERM to the old" if handover else "SIGTERM, then a new one"
    table = Table(f"5{'b' if handover else 'a'}. Interface server restart ({how}) with {p.restart_sockets} "
                  "WebSockets reconnecting with the JS client's backoff")
    with Run(p, logdir) as run:
        sockets = run.load("echo", "e", count=p.restart_sockets, interval=p.restart_interval, reconnect=True,
                           timeout=5.0)
        sockets.wait_ready(120)
        http = run.load("http", "h", rate=min(p.http_rate, 20), query="ms=0", timeout=p.http_timeout * 3)
        http.wait_ready()
        run.mark()
        run.hold(p.baseline)
        old = run.d.server
        if handover:
            new = run.d.start_server()
            run.watch(new)
        t_stop = now()
        old.signal(signal.SIGTERM)
        code = old.wait(60)
        t_exited = now()
        run.d.retire(old)
        if not handover:
            new = run.d.start_server()
            run.watch(new)
        t_listening = now()
        wait_until(lambda: established(run.d.port) >= p.restart_sockets, 60, "every socket connected again",
                   interval=0.1)
        run.hold(p.settle)
        run.stop_loads()
        opened = sum(1 for sock in run.results["e"]["sockets"] for e in sock["events"] if e[1] == "open")

        def disconnects() -> int:
            return sum(1 for found in run.d.journal_entries().values() for event, _ in found if event == "D")

        try:
            wait_until(lambda: disconnects() >= opened, 30, "a websocket.disconnect for every socket", interval=0.2)
        except TimeoutError:
            pass
        consumed = disconnects()
    figures = add_common(table, run)
    echo = figures["echo"]
    closes, gaps, reconnected = Counter(), [], 0
    last_open = t_stop
    for sock in run.results["e"]["sockets"]:
        events = sock["events"]
        close = next((e for e in events if e[1] == "close" and e[0] >= t_stop), None)
        if close is None:
            continue
        closes[close[2]] += 1
        reopen = next((e for e in events if e[1] == "open" and e[0] > close[0]), None)
        if reopen is not None:
            reconnected += 1
            gaps.append(reopen[0] - close[0])
            last_open = max(last_open, reopen[0])
    table.rows = [row for row in table.rows if not row.measure.startswith(("WebSockets dropped", "broadcasts"))]
    table.add("close codes the clients saw", statuses(closes), f"1001 × {p.restart_sockets}",
              closes == Counter({1001: p.restart_sockets}), key="close_1001")
    table.add("sockets reconnected", f"{reconnected} of {p.restart_sockets}", "all",
              reconnected == p.restart_sockets, key="reconnected")
    table.add("reconnect time per socket p50 / p99 / max",
              f"{fmt(percentile_of(gaps, 0.5))} / {fmt(percentile_of(gaps, 0.99))} / {fmt(max(gaps, default=None))}",
              "JS backoff's first retry is 0.8-1.2 s")
    table.add("SIGTERM → old server exited (status)", f"{fmt(t_exited - t_stop)} ({code})", "status 0",
              code == 0, key="exit_status")
    if not handover:
        table.add("old server exited → new one listening", t_listening - t_exited)
    table.add("SIGTERM → every socket open again", last_open - t_stop)
    table.add("echo lost on open sockets", echo.lost, "0", echo.lost == 0, key="echo_lost")
    table.add("websocket.disconnect consumed / sockets closed", f"{consumed} / {opened}", "all",
              consumed == opened, key="disconnects")
    table.add("HTTP errors (connections wait in the inherited socket's backlog)", sum(figures["http"].failed.values()),
              "0", not figures["http"].failed, key="http_errors")
    add_log_lines(table, run)
    return table


def server_handover(p: Profile, logdir: Path) -> Table:
    """:func:`server_restart` with the new server started before the old one is stopped."""
    return server_restart(p, logdir, handover=True)


def established(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (server side), from /proc/net/tcp."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as table:
                next(table)
                for line in table:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except FileNotFoundError:
            continue
    return count


# -- 6. overload ------------------------------------------------------------------------------------


def overload(p: Profile, logdir: Path) -> Table:
    """Measure capacity, offer twice it, then ``recovery_load`` of it: only 503s and 1013s, bounded latency, the queue drains."""
    table = Table(f"6. Overload: HTTP at 2× capacity (and WebSocket messages at 0.5×), then HTTP at {p.recovery_load:g}×")
    with Run(p, logdir) as run:
        calibrate = run.load("http", "cal", rate=3000, connections=300, query="ms=0", timeout=30)
        calibrate.wait_ready()
        t0 = now()
        run.hold(3.0)
        t1 = now()
        calibration = calibrate.stop()
        run.results["cal"] = calibration
        capacity = sum(1 for r in calibration["records"] if r[2] == 200 and t0 + 1 <= r[1] < t1) / (t1 - t0 - 1)
        run.mark()
        t_high = now()
        high = [run.load("http", "h", rate=2 * capacity, connections=1000, query="ms=0", timeout=30),
                # WebSocket messages at half the capacity on top, sent whether answered or not.
                run.load("echo", "e", count=p.echo_sockets, interval=2 * p.echo_sockets / capacity, window=1000,
                         reconnect=True, timeout=30)]
        for load in high:
            load.wait_ready()
        run.hold(p.overload_seconds)
        for load in high:
            run.results[load.name] = load.stop()
        t_low = now()
        low = run.load("http", "l", rate=capacity * p.recovery_load, connections=200, query="ms=0", timeout=30)
        low.wait_ready()
        run.hold(p.overload_seconds)
        t_end = now()
        run.results["l"] = low.stop()
        drained = wait_until(lambda: run.d.pending("http.request") == 0 and run.d.pending("websocket.receive") == 0,
                             30, "the request queues empty", interval=0.05)
        t_drained = now()
        alive = len(run.d.processes()) == 1 + p.workers
    high_http = http_summary(run.of("h"))
    high_echo = echo_summary(run.of("e"))
    low_http = http_summary(run.of("l"))
    tail = http_summary(run.of("l"), (t_low + p.overload_seconds / 2, t_end))
    third = p.overload_seconds / 3
    early = http_summary(run.of("h"), (t_high, t_high + third))
    late = http_summary(run.of("h"), (t_low - third, t_low))
    seconds = t_low - t_high
    table.add("capacity measured (HTTP answered/s, saturated)", f"{capacity:.0f}/s")
    table.add("at 2×: HTTP offered / attempted / answered per s",
              f"{2 * capacity:.0f} / {high_http.attempted / seconds:.0f} / {high_http.answered / seconds:.0f}",
              "(attempted < offered: the client's 1,000 connections were all waiting)")
    table.add("at 2×: HTTP failed (by status)", statuses(high_http.failed), "503 only", set(high_http.failed) <= {503},
              key="only_503")
    table.add("at 2×: WS messages attempted / answered", f"{high_echo.attempted} / {high_echo.answered}")
    table.add("at 2×: WS closes (by code)", statuses(high_echo.dropped), "1013 only",
              set(high_echo.dropped) <= {1013}, key="only_1013")
    table.add("at 2×: WS handshakes refused", statuses(high_echo.refused), "503 only",
              set(high_echo.refused) <= {"503"}, key="refused_503")
    table.add("at 2×: accepted HTTP p50 / p99", f"{fmt(high_http.p(0.5))} / {fmt(high_http.p(0.99))}")
    table.add("at 2×: accepted HTTP p99, first / last third", f"{fmt(early.p(0.99))} / {fmt(late.p(0.99))}",
              "bounded: last ≤ 2× first", ratio_ok(late.p(0.99), early.p(0.99)), key="accepted_p99")
    table.add(f"at {p.recovery_load:g}×: HTTP failed / p99 (second half)",
              f"{statuses(low_http.failed)} / {fmt(tail.p(0.99))}"
              + (f" ({low_http.late} dropped by a client running late)" if low_http.late else ""),
              "0 in the second half", not tail.failed, key="recovered")
    table.add("queues empty after the load stopped", t_drained - t_end if drained else "not within 30 s", "< 5 s",
              drained and t_drained - t_end < 5, key="drained")
    table.add("processes alive", "all" if alive else "NOT all", "all", alive, key="alive")
    table.add("messages duplicated (journal + echoes)", run.journal_duplicates() + high_echo.duplicated, "0",
              run.journal_duplicates() + high_echo.duplicated == 0, key="duplicated")
    table.figures["capacity"] = capacity
    add_log_lines(table, run)
    return table


# -- 7. soak ---------------------------------------------------------------------------------------


def soak(p: Profile, logdir: Path) -> Table:
    """Mixed load at about half capacity for ``soak_seconds``; RSS, fds and Redis keys sampled."""
    table = Table(f"7. Soak: {p.soak_seconds / 60:g} min of HTTP, echo, broadcast and connect/disconnect churn")
    samples: list[tuple[float, dict[str, tuple[float, int]], int]] = []
    with Run(p, logdir) as run:
        d = run.d
        baseline_keys = d.dbsize()
        # A few seconds of every kind of load first: each process opens its Redis connections
        # (one per thread, lazily) then, and those belong to the baseline.
        warm = [run.load("http", "wh", rate=p.http_rate, query="ms=0"), run.load("echo", "we", count=2),
                run.load("room", "wr", count=2), run.load("http", "wb", rate=2, path="/broadcast/"),
                run.load("churn", "wc", count=2)]
        for load in warm:
            load.wait_ready()
        run.hold(3.0)
        for load in warm:
            load.stop()
        pids = {proc.name: proc.pid for proc in d.processes()}
        pids["redis"] = d.redis_pid()
        baseline_fds = {name: process_sample(pid)[1] for name, pid in pids.items()}
        run.standard_load(http_rate=p.http_rate)
        churn = run.load("churn", "c", count=4, interval=0.2)
        churn.wait_ready()
        t0 = now()
        while now() - t0 < p.soak_seconds:
            samples.append((now() - t0, {name: process_sample(pid) for name, pid in pids.items()}, d.dbsize()))
            run.hold(min(p.sample_interval, max(0.0, p.soak_seconds - (now() - t0))))
        samples.append((now() - t0, {name: process_sample(pid) for name, pid in pids.items()}, d.dbsize()))
        peak_keys = max(keys for _, _, keys in samples)
        run.stop_loads()
        t_stop = now()
        expiry = 10.0
        try:
            wait_until(lambda: d.dbsize() <= baseline_keys, 2 * expiry + 15, "the key count back to its baseline",
                       interval=0.5)
            keys_back = now() - t_stop
        except TimeoutError:
            keys_back = None
        left = d.keys_by_kind()

        # A process may keep up to POOL_GROWTH more descriptors than at the baseline: a Redis
        # connection pool opens one more connection the first time load is a little more concurrent
        # than in the warm-up, and keeps it (bounded by the pool size). A leak grows past that.
        def fds_back() -> bool:
            return all(process_sample(pid)[1] <= baseline_fds[name] + POOL_GROWTH for name, pid in pids.items())

        try:
            wait_until(fds_back, 15, "file descriptors back to baseline", interval=0.2)
            fds_ok = True
        except TimeoutError:
            fds_ok = False
        final_fds = {name: process_sample(pid)[1] for name, pid in pids.items()}
        alive = len(d.processes()) == 1 + p.workers
    add_common(table, run)
    churn_result = Counter(c[2] for c in run.results["c"]["cycles"])
    table.add("churn connect/echo/close cycles", statuses(churn_result), "all ok",
              set(churn_result) <= {"ok"}, key="churn_ok")
    for name in pids:
        series = [(t, sample[name][0]) for t, sample, _ in samples if t >= p.soak_warmup]
        slope = slope_per(series, 600.0)
        first, last = samples[0][1][name][0], samples[-1][1][name][0]
        table.add(f"RSS {name}: start → end, slope after {fmt(p.soak_warmup)} warm-up",
                  f"{first:.1f} → {last:.1f} MiB, {slope:+.2f} MiB/10 min" if slope is not None else f"{first:.1f} MiB",
                  "< 1 MiB/10 min", None if slope is None or p.name != "full" else slope < 1.0)
    table.add("Redis keys: baseline / peak / back to baseline after",
              f"{baseline_keys} / {peak_keys} / {fmt(keys_back) if keys_back is not None else 'not back'}",
              "back within 2 × expiry + 15 s", keys_back is not None, key="keys_back")
    if keys_back is None:
        table.add("keys left (by kind)", ", ".join(f"{k} {n}" for k, n in sorted(left.items())))
    table.add("file descriptors: baseline → end",
              ", ".join(f"{name} {baseline_fds[name]}→{final_fds[name]}" for name in pids),
              f"back to baseline (+{POOL_GROWTH} pooled)",
              fds_ok, key="fds_back")
    table.add("processes alive", "all" if alive else "NOT all", "all", alive, key="alive")
    table.figures["rss"] = [(t, {name: s[0] for name, s in sample.items()}) for t, sample, _ in samples]
    add_log_lines(table, run)
    return table


def slope_per(series: list[tuple[float, float]], seconds: float) -> float | None:
    """Least-squares slope of ``(t, value)`` points, per ``seconds``; None with fewer than 3 points."""
    if len(series) < 3:
        return None
    n = len(series)
    mean_t = sum(t for t, _ in series) / n
    mean_v = sum(v for _, v in series) / n
    var = sum((t - mean_t) ** 2 for t, _ in series)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in series) / var * seconds


SCENARIOS: dict[str, Callable[[Profile, Path], Table]] = {
    "rolling": rolling_deploy,
    "sigkill": sigkill_worker,
    "redis": redis_restart,
    "sentinel": sentinel_failover,
    "restart": server_restart,
    "handover": server_handover,
    "overload": overload,
    "soak": soak,
}

__all__ = ["FULL", "QUICK", "SCENARIOS", "TEST", "Profile"]
