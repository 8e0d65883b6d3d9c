"""The same-machine SQLite layer against the conformance suite."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from asgi_backends.conformance import ConformanceTests
from asgi_backends.sqlite import SQLiteChannelLayer


class TestSQLiteLayer(ConformanceTests):
    @pytest.fixture(autouse=True)
    def _directory(self):
        self.directory = tempfile.mkdtemp(prefix="asgi-sqlite-")
        yield
        shutil.rmtree(self.directory, ignore_errors=True)

    def make_layer(self, **config):
        return SQLiteChannelLayer(self.directory, **config)

    def layer_spec(self, **config):
        return "asgi_backends.sqlite.SQLiteChannelLayer", {"path": self.directory, **config}

    def test_cross_process(self):
        assert SQLiteChannelLayer.cross_process is True
