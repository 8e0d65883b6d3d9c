"""Console logging for the management commands (only where the project configured none)."""

from __future__ import annotations

import logging
import sys


def setup_console_logging(verbosity: int) -> None:
    """Send the worker's and channels' logs to stderr according to ``-v``.

    0: errors; 1: startup, shutdown and warnings; 2+: every consumer run.
    Loggers that already have handlers (from ``settings.LOGGING``) are left alone.
    """
    level = logging.ERROR if verbosity < 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("worker", "channels", "interface_server"):
        logger = logging.getLogger(name)
        if logger.handlers:
            continue
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
