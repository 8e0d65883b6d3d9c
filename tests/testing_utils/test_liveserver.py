"""ChannelLiveServerTestCase: a real interface server and worker process per test, on the test database.

The suite's Django is set up with ``settings.configure()`` from
``tests.testing_utils.settings`` (in-memory layer), so the live cases name
that module for their children and get the same-machine layer put in for
the in-memory one. Two more runs go through Django's own test runner in a
subprocess (``runner_cases``, which pytest does not collect): there the
test database is the runner's, distinct from the settings' own, so they
show the children use the test database's name -- and that an in-memory
test database (Django's default for SQLite) is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket
from django.contrib.auth.models import User
from django.test import modify_settings, override_settings

from channels import Group, channel_layers
from channels.test.liveserver import ChannelLiveServerTestCase

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STATIC_FILE = REPO / "channels" / "static" / "channels" / "js" / "websocketbridge.js"
LIVE_LAYER = {
    "default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer",
        "ROUTING": "tests.testing_utils.liveproject.routing.channel_routing",
    },
}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@override_settings(ROOT_URLCONF="tests.testing_utils.liveproject.urls", CHANNEL_LAYERS=LIVE_LAYER,
                   STATIC_URL="/static/")
@modify_settings(INSTALLED_APPS={"append": "django.contrib.staticfiles"})
class LiveServerTests(ChannelLiveServerTestCase):
    settings_module = "tests.testing_utils.settings"  # what the suite configured Django from
    worker_threads = 2

    def test_a_view_in_the_worker_reads_what_the_test_wrote(self):
        ann = User.objects.create(username="ann")
        assert get(f"{self.live_server_url}/users/ann/") == (200, f"ann #{ann.pk}")
        assert get(f"{self.live_server_url}/users/nobody/") == (404, "no user nobody")
        assert get(f"{self.live_server_url}/threads/") == (200, "2")  # worker_threads

    def test_a_websocket_consumer_reads_the_database_and_the_test_reaches_its_group(self):
        ben = User.objects.create(username="ben")
        sock = websocket.create_connection(f"{self.live_server_ws_url}/users/", timeout=10)
        try:
            sock.send("ben")
            assert sock.recv() == f"ben #{ben.pk}"
            sock.send("carl")
            assert sock.recv() == "carl: none"
            # The test process's layer is the live server's (the same-machine one put in for in-memory).
            Group("live-watchers").send({"text": "from the test"})
            assert sock.recv() == "from the test"
        finally:
            sock.close()

    def test_static_files_are_served_by_the_worker(self):
        status, body = get(f"{self.live_server_url}/static/channels/js/websocketbridge.js")
        assert status == 200
        assert body == STATIC_FILE.read_text()


def run_case(case_class: type) -> unittest.TestResult:
    """Run a test class as a test runner would (setUpClass included); return the result."""
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case_class).run(result)
    return result


def only_error(result: unittest.TestResult) -> str:
    assert result.testsRun <= 1 and not result.failures, result.failures
    assert len(result.errors) == 1, result.errors
    return result.errors[0][1]


def test_a_cross_process_layer_is_used_as_configured_and_flushed_first(redis_server):
    redis_layer = {"default": {"BACKEND": "asgi_redis.RedisChannelLayer",
                               "CONFIG": {"hosts": [redis_server.url], "prefix": "live-test:"},
                               "ROUTING": LIVE_LAYER["default"]["ROUTING"]}}
    with override_settings(CHANNEL_LAYERS=redis_layer):
        channel_layers["default"].send("stale", {"left": "behind"})
    seen = {}

    @override_settings(ROOT_URLCONF="tests.testing_utils.liveproject.urls", CHANNEL_LAYERS=redis_layer)
    class OnRedis(ChannelLiveServerTestCase):
        settings_module = "tests.testing_utils.settings"

        def test_through_redis(self):
            layer = channel_layers["default"]
            seen["backend"] = type(layer.channel_layer).__module__
            seen["stale"] = layer.receive(["stale"], block=False)
            dee = User.objects.create(username="dee")
            seen["page"] = get(f"{self.live_server_url}/users/dee/")
            seen["expected"] = (200, f"dee #{dee.pk}")

    result = run_case(OnRedis)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen["backend"].startswith("asgi_backends.redis")  # not replaced by the same-machine layer
    assert seen["stale"] == (None, None)
    assert seen["page"] == seen["expected"]


def test_multiple_channel_layers_are_refused():
    @override_settings(CHANNEL_LAYERS={**LIVE_LAYER, "other": LIVE_LAYER["default"]})
    class TwoLayers(ChannelLiveServerTestCase):
        settings_module = "tests.testing_utils.settings"

        def test_nothing(self):
            raise AssertionError("never runs")

    error = only_error(run_case(TwoLayers))
    assert "ImproperlyConfigured: ChannelLiveServerTestCase does not support multiple CHANNEL_LAYERS" in error
    assert "(configured: default, other)" in error


def test_without_a_settings_module_it_says_to_set_one():
    @override_settings(SETTINGS_MODULE=None)  # as after settings.configure(), however this run was set up
    class NoModule(ChannelLiveServerTestCase):
        def test_nothing(self):
            raise AssertionError("never runs")

    error = only_error(run_case(NoModule))
    assert "ImproperlyConfigured" in error and "set settings_module on the test class" in error


def test_a_child_that_dies_is_reported_at_once():
    class BrokenSettings(ChannelLiveServerTestCase):
        settings_module = "tests.testing_utils.liveproject.no_such_settings"

        def test_nothing(self):
            raise AssertionError("never runs")

    error = only_error(run_case(BrokenSettings))
    assert "LiveProcessError: The live interface server (pid " in error
    assert "exited with status 1 before it was ready" in error


def test_live_server_url_outside_a_test_is_an_error():
    with pytest.raises(RuntimeError, match="only while a test runs"):
        LiveServerTests("test_static_files_are_served_by_the_worker").live_server_url


def django_test_runner(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``runner_cases`` under ``python -m django test`` with ``runner_settings``."""
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("LIVE_RUNNER_")}
    child_env.update(DJANGO_SETTINGS_MODULE="tests.testing_utils.liveproject.runner_settings",
                     LIVE_RUNNER_DIR=str(tmp_path), PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "django", "test", "tests.testing_utils.liveproject.runner_cases",
                           "-v", "2"], cwd=REPO, env=child_env, capture_output=True, text=True, timeout=90)


def test_under_djangos_runner_the_children_use_its_test_database(tmp_path):
    test_db = tmp_path / "test-db.sqlite3"
    result = django_test_runner(tmp_path, LIVE_RUNNER_TEST_DB=str(test_db))
    assert result.returncode == 0, result.stderr
    assert f"Creating test database for alias 'default' ('{test_db}')" in result.stderr
    assert "test_the_worker_reads_the_runners_test_database" in result.stderr and "... ok" in result.stderr
    # Nothing ever opened the settings' own database: the children were given the test database's name.
    assert not (tmp_path / "never-created.sqlite3").exists()


def test_under_djangos_runner_an_in_memory_test_database_is_refused(tmp_path):
    result = django_test_runner(tmp_path)
    assert result.returncode == 1, result.stderr
    assert ("ImproperlyConfigured: ChannelLiveServerTestCase cannot be used with in-memory databases: "
            "'default' lives in this process only") in result.stderr
    assert "DATABASES['default']['TEST'] = {'NAME': 'test_db.sqlite3'}" in result.stderr
