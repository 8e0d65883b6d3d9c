"""WebSocket consumers the live worker runs: look users up, and join a group the test sends to."""

from django.contrib.auth.models import User

from channels import Group
from channels.routing import route

WATCHERS = "live-watchers"


def connect(message, **kwargs):
    Group(WATCHERS).add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def lookup(message, **kwargs):
    username = message.content["text"]
    found = User.objects.filter(username=username).first()
    message.reply_channel.send({"text": f"{username} #{found.pk}" if found else f"{username}: none"})


def disconnect(message, **kwargs):
    Group(WATCHERS).discard(message.reply_channel)


channel_routing = [
    route("websocket.connect", connect, path=r"^/users/$"),
    route("websocket.receive", lookup, path=r"^/users/$"),
    route("websocket.disconnect", disconnect, path=r"^/users/$"),
]
