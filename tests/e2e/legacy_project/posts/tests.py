"""The project's own tests, as a Channels 1.1.8 project wrote them.

Run with ``python manage.py test posts``; the suite of this repository runs
them in a subprocess and requires every one to pass.
"""

import json

from django.contrib.auth.models import User

from channels import Channel, Group, channel_layers, route
from channels.test import ChannelTestCase, Client, HttpClient, WSClient, apply_routes

STREAM = "/liveblog/news/stream/"


def echo(message):
    message.reply_channel.send({"text": message["text"]})


class StreamTests(ChannelTestCase):

    def test_a_post_reaches_every_reader(self):
        reader, writer = WSClient(), WSClient()
        reader.send_and_consume("websocket.connect", path=STREAM)
        writer.send_and_consume("websocket.connect", path=STREAM)
        # 1.x encoded a dict given as content["text"] to JSON.
        writer.send_and_consume("websocket.receive", {"text": {"body": "hello"}}, path=STREAM)
        expected = {"slug": "news", "body": "hello", "user": None}
        self.assertEqual(reader.receive(), expected)
        self.assertEqual(writer.receive(), expected)
        self.assertIsNone(reader.receive())

    def test_receive_without_json_gives_the_text(self):
        client = WSClient()
        client.send_and_consume("websocket.connect", path=STREAM)
        client.send_and_consume("websocket.receive", text={"body": "raw"}, path=STREAM)
        text = client.receive(json=False)
        self.assertIsInstance(text, str)
        self.assertEqual(json.loads(text)["body"], "raw")

    def test_logged_in_user_is_named(self):
        User.objects.create_user("ada", password="secret")
        client = WSClient()
        self.assertTrue(client.login(username="ada", password="secret"))
        client.send_and_consume("websocket.connect", path=STREAM)
        client.send_and_consume("websocket.receive", text={"body": "signed"}, path=STREAM)
        self.assertEqual(client.receive()["user"], "ada")

    def test_handshake_headers_may_be_a_dict_of_bytes(self):
        client = WSClient()
        client.set_cookie("theme", "dark")
        headers = {"cookie": b"theme=dark", "origin": b"http://testserver"}
        client.send_and_consume("websocket.connect", {"headers": headers}, path=STREAM)
        self.assertIsNone(client.receive())

    def test_the_http_view_notifies_readers_through_a_channel(self):
        reader = WSClient()
        reader.send_and_consume("websocket.connect", path=STREAM)
        Channel("liveblog.notify").send({"slug": "news", "body": "from http"})
        reader.consume("liveblog.notify")
        self.assertEqual(reader.receive()["body"], "from http")

    def test_disconnect_leaves_the_group(self):
        client = WSClient()
        client.send_and_consume("websocket.connect", path=STREAM)
        client.send_and_consume("websocket.disconnect", path=STREAM)
        Group("liveblog-news").send({"text": "{}"})
        self.assertIsNone(client.receive())


class PlainClientTests(ChannelTestCase):

    def test_reply_channel_is_a_plain_name(self):
        client = Client()
        with apply_routes([route("echo", echo)]):
            client.send_and_consume("echo", {"text": "hi"})
        # 1.x tests read the reply channel directly, with ASGI's receive_many.
        channel, content = channel_layers["default"].receive_many([client.reply_channel])
        self.assertEqual((channel, content), (client.reply_channel, {"text": "hi"}))
        self.assertIsNone(self.get_next_message(client.reply_channel))

    def test_http_client_receive_gives_the_text(self):
        client = HttpClient()
        with apply_routes([route("echo", echo)]):
            client.send_and_consume("echo", {"text": "hey"})
        self.assertEqual(client.receive(json=False), "hey")
