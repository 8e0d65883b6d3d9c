"""Reading the load clients' records: what was attempted, answered, failed, lost, duplicated; tables.

Every function takes the JSON a client wrote (see :mod:`benchmarks.faults.clients`)
and an optional time window ``(start, end)`` in ``time.monotonic()`` seconds;
a request or message belongs to the window its *start* falls in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

Window = tuple[float, float] | None

HTTP_STATUS_NAMES = {-1: "reset", -2: "no answer", -3: "wrong answer"}


def inside(t: float, window: Window) -> bool:
    return window is None or window[0] <= t < window[1]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``values`` (nearest rank), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class HttpSummary:
    attempted: int = 0
    answered: int = 0
    failed: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failure_latencies: list[float] = field(default_factory=list)
    skipped: int = 0
    late: int = 0  # requests a client dropped because it ran behind its schedule

    def p(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)


def http_summary(results: Iterable[dict[str, Any]], window: Window = None) -> HttpSummary:
    """Sum the ``http`` clients' records: 200s are answered, anything else failed (by status)."""
    summary = HttpSummary()
    for result in results:
        summary.skipped += result.get("skipped", 0)
        summary.late += result.get("late", 0)
        for start, end, status, _pid, _key in result["records"]:
            if not inside(start, window):
                continue
            summary.attempted += 1
            if status == 200:
                summary.answered += 1
                summary.latencies.append(end - start)
            else:
                summary.failed[HTTP_STATUS_NAMES.get(status, status)] += 1
                summary.failure_latencies.append(end - start)
    return summary


@dataclass
class EchoSummary:
    sockets: int = 0
    attempted: int = 0
    answered: int = 0
    lost: int = 0
    cut: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    dropped: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def p(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)


def echo_summary(results: Iterable[dict[str, Any]], window: Window = None) -> EchoSummary:
    """Sum the ``echo`` clients' sockets.

    ``lost``: sent on a socket that stayed open and never answered (by the
    end of the run); ``cut``: unanswered when the socket closed;
    ``out_of_order``: answered after a message the socket sent later;
    ``dropped``: closes the client did not start, by code.
    """
    summary = EchoSummary()
    for result in results:
        for sock in result["sockets"]:
            summary.sockets += 1
            summary.duplicated += sock["dups"]
            for event in sock["events"]:
                if event[1] == "close" and inside(event[0], window):
                    summary.dropped[event[2]] += 1
                elif event[1] == "refused" and inside(event[0], window):
                    summary.refused[event[2]] += 1
            latest_answer = None
            for _key, sent, answered, state in sorted(sock["msgs"], key=lambda m: m[1], reverse=True):
                # Walking from the newest: an answer later than a newer message's answer is out of order.
                if answered is not None:
                    if latest_answer is not None and answered > latest_answer and inside(sent, window):
                        summary.out_of_order += 1
                    latest_answer = answered if latest_answer is None else min(latest_answer, answered)
                if not inside(sent, window):
                    continue
                summary.attempted += 1
                if answered is not None:
                    summary.answered += 1
                    summary.latencies.append(answered - sent)
                elif state == "cut":
                    summary.cut += 1
                else:
                    summary.lost += 1
    return summary


def room_summary(rooms: Iterable[dict[str, Any]], broadcasts: Iterable[dict[str, Any]], grace: float = 2.0,
                 window: Window = None) -> dict[str, int]:
    """Broadcasts each room socket should have had (sent while it was open) against what it got.

    A broadcast counts for a socket when the socket was open before the
    ``/broadcast/`` request started and stayed open ``grace`` seconds after
    it was answered.
    """
    sent = [(start, end, key) for r in broadcasts for start, end, status, _pid, key in r["records"]
            if status == 200 and inside(start, window)]
    expected = got = dups = dropped = 0
    for room in rooms:
        for sock in room["sockets"]:
            spans = open_spans(sock["events"])
            dropped += sum(1 for e in sock["events"] if e[1] == "close" and inside(e[0], window))
            seen = Counter(key for key, _t in sock["got"])
            dups += sum(n - 1 for n in seen.values() if n > 1)
            for start, end, key in sent:
                if any(opened <= start and end + grace <= closed for opened, closed in spans):
                    expected += 1
                    got += key in seen
    return {"expected": expected, "delivered": got, "lost": expected - got, "duplicated": dups, "dropped": dropped}


def open_spans(events: list[list]) -> list[tuple[float, float]]:
    """``[(opened, closed), ...]`` of one socket's connections (an unclosed one ends at infinity)."""
    spans, opened = [], None
    for event in events:
        if event[1] == "open":
            opened = event[0]
        elif event[1] in ("close", "bye") and opened is not None:
            spans.append((opened, event[0]))
            opened = None
    if opened is not None:
        spans.append((opened, float("inf")))
    return spans


def failure_times(http: Iterable[dict[str, Any]], echo: Iterable[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """``(failures, successes)``: when each failed and each answered request or message happened."""
    failures, successes = [], []
    for result in http:
        for start, end, status, _pid, _key in result["records"]:
            (successes if status == 200 else failures).append(end if status == 200 else start)
    for result in echo:
        for sock in result["sockets"]:
            failures.extend(e[0] for e in sock["events"] if e[1] in ("close", "refused"))
            for _key, sent, answered, _state in sock["msgs"]:
                if answered is None:
                    failures.append(sent)
                else:
                    successes.append(answered)
    return failures, successes


def recovery_time(http: Iterable[dict[str, Any]], echo: Iterable[dict[str, Any]], cleared: float,
                  since: float) -> float:
    """Seconds from ``cleared`` (the fault's end) until everything answered again.

    That is the first success after the last failure (of those from
    ``since`` on); 0 when nothing failed after ``since``.
    """
    failures, successes = failure_times(list(http), list(echo))
    failures = [t for t in failures if t >= since]
    if not failures:
        return 0.0
    last = max(failures)
    after = [t for t in successes if t > last]
    if not after:
        return float("inf")
    return max(0.0, min(after) - cleared)


def first_answer_by_pid(http: Iterable[dict[str, Any]], after: float) -> dict[int, float]:
    """For each worker pid, when its first HTTP answer after ``after`` arrived."""
    first: dict[int, float] = {}
    for result in http:
        for _start, end, status, pid, _key in result["records"]:
            if status == 200 and end > after and (pid not in first or end < first[pid]):
                first[pid] = end
    return first


# -- tables -------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    value: str
    target: str = ""
    ok: bool | None = None
    key: str | None = None


@dataclass
class Table:
    """One scenario's figures; ``failures`` lists the targets not met."""

    title: str
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, measure: str, value: Any, target: str = "", ok: bool | None = None, key: str | None = None) -> None:
        """Add a row; ``key`` names a checked target so tests can ask for it (:meth:`met`)."""
        self.rows.append(Row(measure, value if isinstance(value, str) else fmt(value), target, ok, key))

    def met(self, key: str) -> bool:
        """Whether the target named ``key`` was met.

        Raises:
            KeyError: no row has that key.
        """
        for row in self.rows:
            if row.key == key:
                return bool(row.ok)
        raise KeyError(f"{self.title!r} has no check {key!r}; it has {[r.key for r in self.rows if r.key]}")

    @property
    def failures(self) -> list[str]:
        return [f"{row.measure}: {row.value} (target {row.target})" for row in self.rows if row.ok is False]

    def render(self) -> str:
        width = max(len(row.measure) for row in self.rows) if self.rows else 10
        value_width = max([len(row.value) for row in self.rows] + [5])
        lines = [f"== {self.title} ==", f"{'measure':{width}s}  {'value':{value_width}s}  target"]
        for row in self.rows:
            mark = "" if row.ok is None else (" ok" if row.ok else " MISSED")
            lines.append(f"{row.measure:{width}s}  {row.value:{value_width}s}  {row.target}{mark}".rstrip())
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| measure | value | target |", "|---|---|---|"]
        for row in self.rows:
            mark = "" if row.ok is None else (" ✓" if row.ok else " **missed**")
            lines.append(f"| {row.measure} | {row.value} | {row.target}{mark} |")
        return "\n".join(lines)


def fmt(value: Any) -> str:
    """Format a figure: seconds to ms below 10 s, counters as ``code×n``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == float("inf"):
            return "never"
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if isinstance(value, Counter):
        return ", ".join(f"{code}×{n}" for code, n in sorted(value.items(), key=str)) or "0"
    return str(value)


def statuses(counter: Counter) -> str:
    return fmt(counter) if counter else "0"
