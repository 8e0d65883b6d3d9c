"""Command line: run the fault scenarios and print a table per scenario.

Usage::

    python benchmarks/faults [--quick] [--logdir DIR] [--markdown FILE] [scenario ...]

Scenarios (all by default, in this order): rolling, sigkill, redis,
sentinel, restart, overload, soak. ``--quick`` runs each in a few seconds
(the soak in 3 minutes); the default is full length (the soak 30 minutes,
1,000 sockets for the restart). Exits 1 if any target was missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .scenarios import FULL, QUICK, SCENARIOS, TEST


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault and soak scenarios against a real deployment.")
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[],
                        help=f"which to run (default: all of {', '.join(SCENARIOS)})")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="CI-sized: a few minutes for everything")
    size.add_argument("--tiny", action="store_true", help="the test suite's sizes (seconds each)")
    parser.add_argument("--logdir", type=Path, default=None, help="where logs and client records go")
    parser.add_argument("--markdown", type=Path, default=None, help="also append the tables to this file")
    parser.add_argument("--connect-capacity", type=int, default=None, metavar="N",
                        help="capacity of websocket.connect (default: the layer's 100), for reconnect bursts")
    args = parser.parse_args(argv)
    profile = TEST if args.tiny else QUICK if args.quick else FULL
    if args.connect_capacity is not None:
        profile = replace(profile, connect_capacity=args.connect_capacity)
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="faults-"))
    names = args.scenarios or list(SCENARIOS)
    missed = []
    for name in names:
        started = time.monotonic()
        table = SCENARIOS[name](profile, logdir / name)
        print(table.render())
        for line in table.figures.get("log", []):
            print(f"    {line}")
        print(f"({time.monotonic() - started:.0f} s, profile {profile.name}, logs in {logdir / name})\n", flush=True)
        if args.markdown is not None:
            with open(args.markdown, "a") as out:
                out.write(table.markdown() + "\n\n")
        missed.extend(f"{name}: {failure}" for failure in table.failures)
    if missed:
        print("Targets missed:\n  " + "\n  ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
