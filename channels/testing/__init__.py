"""Test helpers with the Channels 3/4 API: :class:`WebsocketCommunicator`, :class:`HttpCommunicator`.

``WebsocketCommunicator`` plays the interface server for one connection:
each event runs as a worker would run it (a fresh consumer instance per
event, its state carried through msgpack between events), and typed
events sent to the consumer's ``channel_name`` through the configured
channel layer are delivered to it, so what passes here passes on workers.
``HttpCommunicator`` does the same for one HTTP request
(``AsyncHttpConsumer``: the request, then the typed events of an open
response); where the routing reaches Django's ASGI handler, that handler
answers.
"""

from asgiref.testing import ApplicationCommunicator

from .http import HttpCommunicator
from .websocket import WebsocketCommunicator

__all__ = ["ApplicationCommunicator", "HttpCommunicator", "WebsocketCommunicator"]
