"""The same-machine SQLite layer against the conformance suite."""

from __future__ import annotations

import os
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


class TestLayerDirectoryMustBePrivate:
    """A predictable layer path could be created first by another user: refuse what is not ours alone."""

    def test_a_directory_writable_by_others_is_refused(self, tmp_path):
        shared = tmp_path / "open"
        shared.mkdir()
        shared.chmod(0o777)
        with pytest.raises(ValueError, match="writable by other users .*chmod go-w"):
            SQLiteChannelLayer(path=str(shared))
        shared.chmod(0o700)
        SQLiteChannelLayer(path=str(shared)).close()  # once private, it is used

    def test_a_database_writable_by_others_is_refused(self, tmp_path):
        layer = SQLiteChannelLayer(path=str(tmp_path / "l"))
        layer.close()
        database = tmp_path / "l" / "channels.sqlite3"
        database.chmod(0o666)
        with pytest.raises(ValueError, match="database .* writable by other users"):
            SQLiteChannelLayer(path=str(tmp_path / "l"))

    @pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
    def test_a_directory_another_user_owns_is_refused(self, tmp_path):
        planted = tmp_path / "planted"
        planted.mkdir(mode=0o700)
        os.chown(planted, 65534, 65534)  # nobody
        with pytest.raises(ValueError, match="belongs to another user"):
            SQLiteChannelLayer(path=str(planted))

    def test_the_default_path_for_an_asgi_ipc_prefix_is_created_private(self):
        layer = SQLiteChannelLayer(prefix=f"privcheck{os.getpid()}")
        try:
            assert os.stat(layer.path).st_mode & 0o077 == 0
        finally:
            layer.flush()
            layer.close()
            shutil.rmtree(layer.path, ignore_errors=True)
