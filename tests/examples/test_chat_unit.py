"""The chat example's own Django tests (``manage.py test chat``) pass.

They run in a subprocess because they need the example's settings, which
must not leak into the rest of the suite's process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.examples.chat_server import CHAT, REPO


def test_chat_app_unit_tests(tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="chatsite.settings",
               CHAT_DB_PATH=str(tmp_path / "chat.sqlite3"), CHAT_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "manage.py", "test", "chat",
                             "--noinput", "-v", "1"], cwd=CHAT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stderr and "Ran 10 tests" in result.stderr, result.stderr
