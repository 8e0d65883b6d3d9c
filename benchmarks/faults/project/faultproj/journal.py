"""What each worker process did, one line per consumer start and end, for the harness to count.

Every consumer writes ``S <key>`` before its work and ``E <key>`` after
its reply went out, to ``$FAULTS_JOURNAL/journal-<pid>.log`` with one
unbuffered ``write`` each (O_APPEND), so a SIGKILL leaves an exact record:
a key started twice anywhere was delivered twice, a key started and not
ended was in the killed consumer's hands.
"""

from __future__ import annotations

import os

_fd: int | None = None


def _journal() -> int | None:
    global _fd
    directory = os.environ.get("FAULTS_JOURNAL")
    if not directory:
        return None
    if _fd is None:
        _fd = os.open(os.path.join(directory, f"journal-{os.getpid()}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return _fd


def mark(event: str, key: str) -> None:
    """Append ``event key`` (``S``tart or ``E``nd) to this process's journal, if journaling is on."""
    fd = _journal()
    if fd is not None:
        os.write(fd, f"{event} {key}\n".encode())
