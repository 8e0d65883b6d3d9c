"""Test utilities: a test case with a fresh channel layer, clients that run consumers, ``apply_routes``.

::

    from channels.test import ChannelTestCase, WSClient

    class ChatTests(ChannelTestCase):
        def test_echo(self):
            client = WSClient()
            client.send_and_consume("websocket.connect", path="/chat/")
            client.send_and_consume("websocket.receive", path="/chat/", text={"hi": 1})
            self.assertEqual(client.receive(), {"hi": 1})
"""

from .base import ChannelTestCase, ChannelTestCaseMixin, Client, TransactionChannelTestCase, apply_routes
from .http import HttpClient
from .liveserver import ChannelLiveServerTestCase
from .websocket import WSClient

__all__ = ["ChannelLiveServerTestCase", "ChannelTestCase", "ChannelTestCaseMixin", "Client", "HttpClient",
           "TransactionChannelTestCase", "WSClient", "apply_routes"]
