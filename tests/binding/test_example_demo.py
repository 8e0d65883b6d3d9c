"""The chat example's binding demo (``examples/chat/chat/bindings.py``): room changes reach ``/rooms/`` sockets.

Runs in a subprocess with the example's own settings (in-memory layer), so
they do not leak into this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.examples.chat_server import CHAT, REPO

SCRIPT = """
import json
from channels.test import WSClient
from chat.models import Room
client = WSClient()
client.send_and_consume("websocket.connect", path="/rooms/")
room = Room.objects.create(slug="garden", title="Garden")
room.title = "Big garden"
room.save()
client.send_and_consume("websocket.receive", path="/rooms/",
                        text={"stream": "rooms", "payload": {"action": "delete", "pk": room.pk}})
print(json.dumps([client.receive() for _ in range(3)]))
"""


def test_room_saves_reach_the_rooms_stream(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(CHAT_DB_PATH=str(tmp_path / "chat.sqlite3"), CHAT_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for args in (["migrate", "-v", "0"], ["shell", "-c", SCRIPT]):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=CHAT, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    frames = json.loads(result.stdout.strip().splitlines()[-1])
    payloads = [frame["payload"] for frame in frames]
    assert [frame["stream"] for frame in frames] == ["rooms"] * 3
    assert [(p.get("action"), p.get("data")) for p in payloads[:2]] == [
        ("create", {"slug": "garden", "title": "Garden"}), ("update", {"slug": "garden", "title": "Big garden"})]
    assert payloads[2]["error"] == "permission denied for delete"  # the stream is read-only
