"""Not in the seeds: a consumer for the fault tests (a handler that hangs, a disconnect that leaves a mark)."""

import os
import threading
from pathlib import Path

from channels.generic.websocket import WebsocketConsumer


class SlowConsumer(WebsocketConsumer):
    def connect(self):
        self.label = self.scope["query_string"].decode() or "unnamed"
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        if text_data == "hang":
            marks = os.environ.get("E2E_MARKS")
            if marks:  # the test waits for this before it kills the worker
                Path(marks, f"{self.label}.hanging").touch()
            threading.Event().wait(600)  # a handler that never answers
        self.send(text_data=f"{self.label} {os.getpid()}")

    def disconnect(self, close_code):
        marks = os.environ.get("E2E_MARKS")
        if marks:
            Path(marks, f"{self.label}.{close_code}.{os.getpid()}").touch()
