"""The getting-started walkthrough's final chat, copied verbatim from the docs, really runs.

The model, consumers, routing and ``CHANNEL_LAYERS`` blocks are cut out of
``docs/getting-started.rst`` as they stand, dropped into a fresh Django
project, and served by ``runserver``; two WebSocket clients in one room and
one in another then talk through it.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import websocket

from tests.examples.chat_server import REPO, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

GUIDE = REPO / "docs" / "getting-started.rst"

SETTINGS = """
SECRET_KEY = "getting-started-test"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.sessions", "channels", "myapp"]
ROOT_URLCONF = "myproject.urls"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
                           "OPTIONS": {{"timeout": 20}}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
"""

MANAGE = """import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def literal_blocks(text: str) -> list[str]:
    """Return the indented literal blocks (after ``::`` or a code-block directive) of some reST."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not (line.rstrip().endswith("::") or line.startswith(".. code-block::")):
            continue
        while i < len(lines) and not lines[i].strip():
            i += 1
        block = []
        while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
            block.append(lines[i][4:])
            i += 1
        if block:
            blocks.append("\n".join(block).strip() + "\n")
    return blocks


def section(text: str, title: str) -> str:
    start = text.index(f"\n{title}\n")
    following = re.search(r"\n[^\n]+\n-{3,}\n", text[start + len(title) + 2:])
    return text[start: start + len(title) + 2 + (following.start() if following else len(text))]


def guide_project(root: Path) -> None:
    guide = GUIDE.read_text()
    saving = literal_blocks(section(guide, "Saving messages to the database"))
    model = next(b for b in saving if b.startswith("from django.db import models"))
    consumers = next(b for b in saving if b.startswith("# myapp/consumers.py"))
    routing = next(b for b in saving if b.startswith("# myproject/routing.py"))
    layers = next(b for b in literal_blocks(section(guide, "A first consumer"))
                  if b.startswith("CHANNEL_LAYERS"))
    files = {
        "manage.py": MANAGE,
        "myproject/__init__.py": "",
        "myproject/settings.py": SETTINGS.format(db=str(root / "db.sqlite3")) + layers,
        "myproject/urls.py": "urlpatterns = []\n",
        "myproject/routing.py": routing,
        "myapp/__init__.py": "",
        "myapp/models.py": model,
        "myapp/consumers.py": consumers,
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)


def test_walkthrough_chat_with_database_runs_as_written(tmp_path):
    guide_project(tmp_path)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="myproject.settings",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for command in (["makemigrations", "myapp", "-v", "0"], ["migrate", "-v", "0"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=tmp_path, env=env, check=True, timeout=60)
    port = free_port()
    log = open(tmp_path / "runserver.log", "wb")
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sockets = []
    try:
        def connected():
            if server.poll() is not None:
                pytest.fail("runserver exited:\n" + (tmp_path / "runserver.log").read_text())
            try:
                return websocket.create_connection(f"ws://127.0.0.1:{port}/lobby/", timeout=10)
            except (OSError, websocket.WebSocketException):
                return None

        try:
            first = wait_until(connected, 30, what="runserver to accept WebSockets", interval=0.1)
        except AssertionError:
            pytest.fail("runserver did not come up:\n" + (tmp_path / "runserver.log").read_text())
        second = websocket.create_connection(f"ws://127.0.0.1:{port}/lobby/", timeout=10)
        elsewhere = websocket.create_connection(f"ws://127.0.0.1:{port}/garden/", timeout=10)
        sockets = [first, second, elsewhere]

        first.send("hello lobby")
        assert first.recv() == "hello lobby"
        assert second.recv() == "hello lobby"
        # The garden hears its own message first: the lobby's never reached it.
        elsewhere.send("hello garden")
        assert elsewhere.recv() == "hello garden"

        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            rows = db.execute("SELECT room, message FROM myapp_chatmessage ORDER BY id").fetchall()
        assert rows == [("lobby", "hello lobby"), ("garden", "hello garden")]
    finally:
        for sock in sockets:
            sock.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
        log.close()
