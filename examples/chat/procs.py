"""Start a few processes together, show their output, stop them together.

Used by ``run.py`` and ``run_production.py``; a tiny stand-in for foreman or
honcho so the example needs nothing extra. Each process runs in its own
process group (so a ``runserver`` autoreloader and its child stop as one)
and is stopped by that group's id: SIGTERM first, SIGKILL after a grace
period.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def read_procfile(path: Path) -> dict[str, str]:
    """Return ``{name: command}`` from a Procfile (``name: command`` lines, ``#`` comments).

    Raises:
        ValueError: a line is not ``name: command``.
    """
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().isidentifier() or not command.strip():
            raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
        entries[name.strip()] = command.strip()
    return entries


def read_env_file(path: Path) -> dict[str, str]:
    """Return the ``KEY=value`` pairs of a ``.env`` file (missing file: empty)."""
    if not path.exists():
        return {}
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip().strip("'\"")
    return pairs


def command_argv(command: str, env: dict[str, str]) -> list[str]:
    """Split a Procfile command into argv for this interpreter.

    ``$VAR`` / ``${VAR}`` are expanded from ``env``; ``python``/``python3``
    become this interpreter and ``interface-server`` becomes
    ``python -m interface_server``, so the commands work in an unactivated
    virtualenv too.
    """
    argv = []
    for word in shlex.split(command):
        for key, value in env.items():
            word = word.replace("${%s}" % key, value).replace("$" + key, value)
        argv.append(word)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    elif argv and argv[0] == "interface-server":
        argv[:1] = [sys.executable, "-m", "interface_server"]
    return argv


class ProcessGroup:
    """Named child processes started and stopped together."""

    def __init__(self, cwd: Path, env: dict[str, str], grace: float = 10.0) -> None:
        self.cwd = cwd
        self.env = env
        self.grace = grace
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._print_lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        """Print one line prefixed with the process name."""
        with self._print_lock:
            sys.stdout.write(f"{name:<8}| {line}\n")
            sys.stdout.flush()

    def start(self, name: str, argv: list[str]) -> None:
        """Start ``argv`` as ``name`` and relay its output."""
        child = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.children[name] = child
        self.say(name, f"started (pid {child.pid}): {' '.join(argv)}")
        threading.Thread(target=self._relay, args=(name, child), daemon=True).start()

    def _relay(self, name: str, child: subprocess.Popen[bytes]) -> None:
        for raw in iter(child.stdout.readline, b""):
            self.say(name, raw.decode("utf-8", "replace").rstrip())

    def wait(self) -> int:
        """Block until Ctrl-C, SIGTERM or one child exits; stop all; return an exit status."""
        stop = threading.Event()
        reason = {"why": ""}

        def on_signal(signum: int, frame: object) -> None:
            reason["why"] = signal.Signals(signum).name
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        status = 0
        while not stop.is_set():
            for name, child in self.children.items():
                if child.poll() is not None:
                    reason["why"] = f"{name} exited with status {child.returncode}"
                    status = child.returncode or 1
                    stop.set()
                    break
            stop.wait(0.2)  # a child's exit has no event to wait on portably
        self.stop(reason["why"])
        return status

    def stop(self, why: str = "") -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after ``grace``."""
        with self._print_lock:
            print(f"\nstopping all processes ({why or 'requested'})", flush=True)
        for child in self.children.values():
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(name, f"did not stop within {self.grace:.0f}s; killing it")
                self._signal(child, signal.SIGKILL)
                child.wait()
            self._signal(child, signal.SIGKILL)  # anything its group left behind

    @staticmethod
    def _signal(child: subprocess.Popen[bytes], signum: int) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass


def ensure_installed() -> None:
    """Make sure this interpreter can import the project; install it if not.

    Inside a virtualenv the project is installed there. Outside one (where
    pip may refuse to touch the system Python) a virtualenv is made in
    ``<repo>/.venv``, the project installed into it, and the calling script
    re-run with that interpreter.
    """
    try:
        import asgi_backends  # noqa: F401
        import channels.routing  # noqa: F401
        import interface_server  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("CHAT_EXAMPLE_INSTALLED"):
        sys.exit(f"The project was installed but {sys.executable} still cannot import it; "
                 f"try: {sys.executable} -m pip install -e {REPO}")
    os.environ["CHAT_EXAMPLE_INSTALLED"] = "1"  # seen by the re-run below: never loop
    in_venv = sys.prefix != sys.base_prefix
    python = sys.executable
    if not in_venv:
        venv = REPO / ".venv"
        python = str(venv / "bin" / "python")
        probe = [python, "-c", "import asgi_backends, channels.routing, interface_server"]
        if Path(python).exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            print(f"Using the project's virtualenv {venv}", flush=True)
            os.execv(python, [python, *sys.argv])
        if not Path(python).exists():
            print(f"Creating a virtualenv in {venv} ...", flush=True)
            made = subprocess.run([sys.executable, "-m", "venv", str(venv)])
            if made.returncode != 0:
                sys.exit("Could not create a virtualenv: install the venv module "
                         "(Debian/Ubuntu: sudo apt-get install python3-venv) and run this again.")
    print(f"Installing the project and its dependencies into {Path(python).parent.parent} ...",
          flush=True)
    installed = subprocess.run([python, "-m", "pip", "install", "--progress-bar", "on", "-e", str(REPO)])
    if installed.returncode != 0:
        sys.exit(f"pip could not install {REPO} (see above).")
    # Editable installs register a path hook that only takes effect in a new
    # interpreter, so start over in one (the virtualenv's, if we made it).
    os.execv(python, [python, *sys.argv])


def port_problem(host: str, port: int) -> str | None:
    """Return a one-line explanation if ``host:port`` cannot be listened on, else ``None``."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        return (f"Cannot listen on {host}:{port} ({error.strerror or error}); "
                f"is something else using it? Pick another port with --port {port + 1}.")
    return None


def migrate(env: dict[str, str]) -> None:
    """Create or update the example's database, saying so."""
    print("Preparing the database (manage.py migrate) ...", flush=True)
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                          cwd=HERE, env=env)
    if done.returncode != 0:
        sys.exit("manage.py migrate failed (see above).")
