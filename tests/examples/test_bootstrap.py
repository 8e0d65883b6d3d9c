"""``examples/chat/run.py`` on a Python that cannot import the project: it makes ``.venv`` and installs there.

How the test gets a real "fresh machine" without a fresh machine, and stays
around ten seconds:

* **The outside interpreter** is the base Python under the one running the
  suite (``sys.base_prefix``: the system or pyenv Python, never a
  virtualenv) started with ``-S``, so no site-packages and no editable
  install are seen: the project is not importable and
  ``sys.prefix == sys.base_prefix``, exactly what ``ensure_installed`` checks
  on a stock Debian. A probe proves the project is not importable before the
  launcher runs.
* **A temporary copy of the checkout** holds the launcher, because it makes
  ``.venv`` beside the code it runs (``<repo>/.venv``); the real checkout is
  never touched.
* **No dependency downloads.** A full ``pip install -e`` fetches Django,
  Twisted, Autobahn, cryptography and their dependencies: a minute or more and
  a network the suite should not need. So pip is configured the way pip reads
  configuration, through the environment (``PIP_NO_DEPS=1``: only the project
  itself is installed, editable, from the local copy), and ``PYTHONPATH``
  lends the dependencies: a directory of symlinks to the suite's own
  site-packages minus the project's install and every ``.pth`` file. (Lending
  site-packages whole fails: the suite's editable finder module has the same
  name as the one pip writes into ``.venv``, comes first on ``sys.path``, and
  maps ``channels`` back to the suite's checkout.) pip still builds the editable wheel in
  its isolated build environment, which needs ``setuptools`` and ``wheel``
  from the package index (PyPI, or a configured mirror): the only network use.

Everything else is the launcher for real: ``python -m venv``, pip inside the
new virtualenv, the re-exec into ``.venv/bin/python``, ``migrate``, and
``runserver`` answering HTTP. A second launch must reuse the virtualenv
without installing again.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.examples.chat_server import REPO, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

#: What ``pip install -e`` of the copy needs from the checkout (setup.py reads README.rst).
PROJECT_FILES = ("setup.py", "pyproject.toml", "README.rst", "asgi_backends", "channels",
                 "interface_server", "worker", "examples/chat")
#: Importable dependencies; the site-packages holding them are lent through PYTHONPATH.
DEPENDENCIES = ("django", "twisted", "autobahn", "msgpack", "redis", "cryptography")
#: The suite's own install of the project in those site-packages, which must not be lent.
PROJECT_INSTALL = ("__editable__", "django_channels_worker")


def base_python() -> str:
    """Return the interpreter this suite's Python was made from (itself, outside a virtualenv)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (f"python{version}", "python3"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"no python{version} or python3 under {sys.base_prefix}/bin to run the launcher with")


def copy_checkout(target: Path) -> Path:
    """Copy what the install needs into ``target`` (no .venv, databases, caches); return it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.sqlite3", ".channel-layer", ".venv")
    for name in PROJECT_FILES:
        source, destination = REPO / name, target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=ignore)
        else:
            shutil.copy2(source, destination)
    return target


def lent_dependencies(target: Path) -> Path:
    """Symlink the suite's site-packages into ``target``, without the project or ``.pth`` files; return it."""
    target.mkdir()
    for site_dir in {Path(importlib.import_module(name).__file__).parent.parent for name in DEPENDENCIES}:
        for entry in site_dir.iterdir():
            if entry.name.startswith(PROJECT_INSTALL) or entry.suffix == ".pth":
                continue
            if not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return target


def outside_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a shell outside any virtualenv, with pip told to install the project alone."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONHOME", "CHAT_EXAMPLE_INSTALLED", "DJANGO_SETTINGS_MODULE")}
    env.update(PYTHONPATH=str(lent_dependencies(tmp_path / "lent-site-packages")), PIP_NO_DEPS="1",
               PYTHONUNBUFFERED="1",
               CHAT_DB_PATH=str(tmp_path / "chat.sqlite3"))
    return env


class Launch:
    """``run.py`` started as a user would, output in a log; stopped by its PID's process group."""

    def __init__(self, python: str, checkout: Path, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [python, "-S", "examples/chat/run.py", "--port", str(self.port), "--noreload"],
                cwd=checkout, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self, timeout: float) -> None:
        """Wait until the lobby page answers 200; fail with the log if the launcher exits first."""
        def serving() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"run.py exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/room/lobby/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        try:
            wait_until(serving, timeout, what="run.py serving the lobby page", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.output()}") from None

    def argv0(self) -> str:
        """The interpreter the launcher's process runs now (it re-execs itself in place)."""
        return Path(f"/proc/{self.process.pid}/cmdline").read_bytes().split(b"\0")[0].decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C sends
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see the re-exec")
def test_run_py_makes_a_venv_installs_into_it_and_reuses_it(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    venv_python = checkout / ".venv" / "bin" / "python"
    python, env = base_python(), outside_env(tmp_path)

    probe = subprocess.run([python, "-S", "-c", "import asgi_backends, channels.routing, interface_server"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0, "the outside interpreter can import the project: nothing to bootstrap"
    assert "No module named" in probe.stderr, probe.stderr

    first = Launch(python, checkout, env, tmp_path / "first.log")
    try:
        first.wait_serving(timeout=90)  # venv + editable install + migrate: ~7 s here
        assert first.argv0() == str(venv_python)
    finally:
        first.stop()
    log = first.output()
    assert f"Creating a virtualenv in {checkout / '.venv'}" in log
    assert f"Installing the project and its dependencies into {checkout / '.venv'}" in log
    assert (checkout / ".venv" / "pyvenv.cfg").exists()

    # Installed into the new virtualenv, editable, from the copy: not the checkout the suite runs from.
    where = subprocess.run([str(venv_python), "-c", "import channels, sys; print(channels.__file__, sys.prefix)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert where.returncode == 0, where.stderr
    module_file, prefix = where.stdout.split()
    assert Path(module_file) == checkout / "channels" / "__init__.py"
    assert Path(prefix) == checkout / ".venv"

    second = Launch(python, checkout, env, tmp_path / "second.log")
    try:
        second.wait_serving(timeout=60)
        assert second.argv0() == str(venv_python)
    finally:
        second.stop()
    log = second.output()
    assert f"Using the project's virtualenv {checkout / '.venv'}" in log
    assert "Creating a virtualenv" not in log and "Installing the project" not in log
