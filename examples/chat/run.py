#!/usr/bin/env python3
"""Quick start: set up and run the chat example with one command.

    python3 examples/chat/run.py            # http://127.0.0.1:8000/

Installs the project if this Python cannot import it yet (into the active
virtualenv, or into ``<repo>/.venv``), migrates the SQLite database, and
starts ``manage.py runserver``: the interface server and worker threads in
one process, on the in-memory channel layer. Nothing else to install or run.

``--layer sqlite --workers 2`` runs the separate-process shape instead
(``runserver --noworker`` plus two ``runworker`` processes on the
same-machine layer), still with no server to install.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from procs import ProcessGroup, ensure_installed, migrate, port_problem  # noqa: E402

LAYERS = {
    "inmemory": "in-memory (inside runserver: one process)",
    "sqlite": "same-machine (SQLite files in {path})",
}


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the chat example.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; to be reached under other names "
                             "also set CHAT_ALLOWED_HOSTS=name1,name2)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="inmemory",
                        help="channel layer (default inmemory)")
    parser.add_argument("--workers", type=int, default=2,
                        help="runworker processes with --layer sqlite (default 2)")
    parser.add_argument("--noreload", action="store_true", help="do not restart on code changes")
    args = parser.parse_args()

    problem = port_problem(args.host, args.port)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    ensure_installed()
    env = dict(os.environ, CHAT_LAYER=args.layer, PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="chatsite.settings")  # not whatever project the shell had
    layer_path = Path(env.setdefault("CHAT_LAYER_PATH", str(HERE / ".channel-layer")))
    migrate(env)

    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    print(f"\n  Chat example: open {url} in your browser (two windows to see them talk).")
    print(f"  Channel layer: {LAYERS[args.layer].format(path=layer_path)}")
    print("  Press Ctrl-C to stop.\n", flush=True)

    runserver = [sys.executable, "manage.py", "runserver", f"{args.host}:{args.port}"]
    if args.noreload:
        runserver.append("--noreload")
    if args.layer == "inmemory":
        os.chdir(HERE)
        os.execve(sys.executable, runserver, env)
    group = ProcessGroup(HERE, env)
    group.start("web", [*runserver, "--noworker"])
    for number in range(1, args.workers + 1):
        group.start(f"worker{number}", [sys.executable, "manage.py", "runworker"])
    return group.wait()


if __name__ == "__main__":
    sys.exit(main())
