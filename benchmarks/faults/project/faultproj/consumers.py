"""WebSocket side: echo (``/echo/``), a broadcast room (``/room/``), and churn with sessions (``/churn/``)."""

import os

from channels import Group
from channels.sessions import channel_session

from .journal import mark


def echo(message):
    """Echo ``KEY`` back as ``KEY pid``."""
    key = message.content["text"]
    mark("S", key)
    message.reply_channel.send({"text": f"{key} {os.getpid()}"})
    mark("E", key)


def accept(message):
    message.reply_channel.send({"accept": True})


def forget(message):
    """Count the disconnect (``D`` in the journal): every closed echo socket must reach a consumer."""
    mark("D", message.content["path"])


def room_join(message):
    # Join before accepting: once the client sees the handshake it is a member.
    Group("room").add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def room_leave(message):
    Group("room").discard(message.reply_channel)


@channel_session
def churn_join(message):
    message.channel_session["joined"] = True
    Group("churn").add(message.reply_channel)
    message.reply_channel.send({"accept": True})


@channel_session
def churn_leave(message):
    Group("churn").discard(message.reply_channel)
