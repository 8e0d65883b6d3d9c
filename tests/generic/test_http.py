"""HttpConsumer."""

from __future__ import annotations

import json

from django.contrib.auth.models import User

from channels.routing import route_class
from channels.test import ChannelTestCase, HttpClient, apply_routes

from . import consumers


class HttpConsumerTests(ChannelTestCase):
    @apply_routes([route_class(consumers.Status, path=r"^/status/(?P<code>\d+)/$")])
    def test_handle_gets_the_body_and_sends_json(self):
        response = HttpClient().request("POST", "/status/7/", body=b"payload")
        assert response["status"] == 201
        assert [b"Content-Type", b"application/json"] in response["headers"]
        assert json.loads(response["content"]) == {"body": "payload", "kwargs": {"code": "7"}}

    @apply_routes([route_class(consumers.Status)])
    def test_the_default_handler_says_405(self):
        response = HttpClient().request("GET", "/status/")
        assert response["status"] == 405

    @apply_routes([route_class(consumers.Whoami)])
    def test_http_user_and_headers(self):
        client = HttpClient()
        client.force_login(User.objects.create_user("linus", password="pw"))
        response = client.request("GET", "/")
        assert response["content"] == b"user=linus"
        assert [b"X-Seen", b"yes"] in response["headers"]

    @apply_routes([route_class(consumers.Status)])
    def test_send_response_rejects_other_types(self):
        from channels.generic.http import HttpConsumer

        class Bad(HttpConsumer):
            def handle(self, body, **kwargs):
                self.send_response(42)

        with apply_routes([route_class(Bad)]):
            with self.assertRaisesRegex(TypeError, "not 42"):
                HttpClient().request("GET", "/")
