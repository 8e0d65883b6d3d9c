#!/usr/bin/env python3
"""Run the chat example in its production shape: Redis, one interface server, two workers.

    redis-server --daemonize yes          # if Redis is not running yet
    python3 examples/chat/run_production.py

Reads ``Procfile`` and ``.env`` beside this file, checks Redis answers,
migrates, then starts ``web`` once and ``worker`` ``--workers`` times. Ctrl-C
(or SIGTERM) stops them all; so does any one of them exiting.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from procs import (  # noqa: E402
    ProcessGroup,
    command_argv,
    ensure_installed,
    migrate,
    port_problem,
    read_env_file,
    read_procfile,
)


def redis_problem(url: str) -> str | None:
    """Return why Redis at ``url`` cannot be used, or ``None`` if it answers PING."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, OSError, ValueError) as error:
        return str(error) or error.__class__.__name__
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the chat example on Redis with separate processes.")
    parser.add_argument("--port", type=int, default=8000, help="interface server port (default 8000)")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes (default 2)")
    args = parser.parse_args()

    problem = port_problem("127.0.0.1", args.port)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    ensure_installed()
    env = {**read_env_file(HERE / ".env"), **os.environ}  # the real environment wins
    env.update(PORT=str(args.port), PYTHONUNBUFFERED="1", PYTHONPATH=str(HERE),
               DJANGO_SETTINGS_MODULE="chatsite.settings")  # not whatever project the shell had
    env.setdefault("CHAT_LAYER", "redis")
    redis_url = env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if env["CHAT_LAYER"] == "redis":
        problem = redis_problem(redis_url)
        if problem:
            print(f"Redis is not answering at {redis_url} ({problem}). Start it with "
                  f"'redis-server --daemonize yes' (Debian/Ubuntu: 'sudo apt-get install redis-server'), "
                  f"or set REDIS_URL to yours.", file=sys.stderr)
            return 2
    migrate(env)

    procfile = read_procfile(HERE / "Procfile")
    print(f"\n  Chat example (production shape): open http://127.0.0.1:{args.port}/")
    print(f"  Channel layer: {env['CHAT_LAYER']} at {redis_url}; "
          f"1 interface server, {args.workers} worker processes. Ctrl-C stops them all.\n", flush=True)
    group = ProcessGroup(HERE, env)
    group.start("web", command_argv(procfile["web"], env))
    for number in range(1, args.workers + 1):
        group.start(f"worker{number}", command_argv(procfile["worker"], env))
    return group.wait()


if __name__ == "__main__":
    sys.exit(main())
