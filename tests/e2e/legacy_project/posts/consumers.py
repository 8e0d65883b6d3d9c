"""Consumers as a Channels 1.x live blog wrote them."""

import json

from channels import Group
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.sessions import channel_session


def group_for(slug):
    return Group("liveblog-%s" % slug)


@channel_session_user_from_http
def ws_connect(message, slug):
    message.reply_channel.send({"accept": True})
    message.channel_session["slug"] = slug
    group_for(slug).add(message.reply_channel)


@channel_session_user
def ws_receive(message, slug):
    data = json.loads(message["text"])
    user = message.user.username if message.user.is_authenticated else None
    group_for(message.channel_session["slug"]).send({
        "text": json.dumps({"slug": slug, "body": data["body"], "user": user}),
    })


@channel_session
def ws_disconnect(message, slug):
    group_for(slug).discard(message.reply_channel)


def notify(message):
    """Posts made through the HTTP view arrive here and go to the blog's readers."""
    group_for(message["slug"]).send({
        "text": json.dumps({"slug": message["slug"], "body": message["body"], "user": None}),
    })
