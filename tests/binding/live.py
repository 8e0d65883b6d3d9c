"""The live-data test project's processes: migrate, interface server, runworker, rundelay.

Reuses the process helpers of ``tests/e2e/support.py``; only the project and
its environment differ.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.support import Proc, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "project"


def live_env(tmp: Path, redis_url: str | None = None) -> dict[str, str]:
    """Environment for the project's processes: database and layer under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    env.update(LIVE_DB=str(tmp / "db.sqlite3"), LIVE_LAYER_PATH=str(tmp / "layer"),
               PYTHONPATH=f"{REPO}{os.pathsep}{PROJECT}", PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="liveproj.settings")
    if redis_url:
        env["LIVE_REDIS_URL"] = redis_url
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT / "manage.py"), *args]


def run_manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run a management command to completion; return its output (raise on failure)."""
    result = subprocess.run(manage(*args), env=env, cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


_template_db: Path | None = None


def migrated_database(target: Path) -> None:
    """Put a migrated copy of the project's database at ``target`` (migrating once per test run)."""
    global _template_db
    if _template_db is None:
        template = Path(tempfile.mkdtemp(prefix="live-template-")) / "db.sqlite3"
        atexit.register(shutil.rmtree, template.parent, True)
        env = live_env(template.parent)
        run_manage(env, "migrate", "-v", "0")
        _template_db = template
    shutil.copyfile(_template_db, target)


class LiveStack:
    """Interface server plus one runworker for the live project, all real processes."""

    def __init__(self, tmp: Path, redis_url: str | None = None) -> None:
        self.tmp = tmp
        self.env = live_env(tmp, redis_url)
        self.port = free_port()
        self.procs: list[Proc] = []
        self.server: Proc | None = None
        self._servers = 0

    def start(self, worker: bool = True) -> LiveStack:
        migrated_database(Path(self.env["LIVE_DB"]))
        if worker:
            proc = Proc(manage("runworker", "--threads", "2"), self.env, self.tmp / "worker.log")
            self.procs.append(proc)
        self.start_server()
        if worker:
            self.procs[0].wait_for_output("Listening on channels")
        return self

    def start_server(self) -> Proc:
        self._servers += 1
        self.server = Proc([sys.executable, "-m", "interface_server", "liveproj.asgi:channel_layer",
                            "-b", "127.0.0.1", "-p", str(self.port)], self.env, self.tmp / f"server{self._servers}.log")
        self.procs.append(self.server)
        wait_for_port(self.port)
        return self.server

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-3000:]}" for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def layer_for(env: dict[str, str]):
    """A layer object in the test process, configured like the project's."""
    if env.get("LIVE_REDIS_URL"):
        from asgi_backends.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[env["LIVE_REDIS_URL"]])
    from asgi_backends.sqlite import SQLiteChannelLayer

    return SQLiteChannelLayer(path=env["LIVE_LAYER_PATH"], blocking_timeout=0.5)
