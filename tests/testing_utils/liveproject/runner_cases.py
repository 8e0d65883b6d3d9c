"""A ChannelLiveServerTestCase run by Django's test runner (not collected by pytest: see test_liveserver.py)."""

import urllib.request

from django.contrib.auth.models import User

from channels.test.liveserver import ChannelLiveServerTestCase


class RunnerLiveServerTests(ChannelLiveServerTestCase):
    def test_the_worker_reads_the_runners_test_database(self):
        User.objects.create(username="runner")
        with urllib.request.urlopen(self.live_server_url + "/users/runner/", timeout=10) as response:
            self.assertEqual(response.read().decode(), f"runner #{User.objects.get().pk}")
