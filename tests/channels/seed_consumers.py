"""Consumers copied from the Getting Started guide (seed 003), unchanged but for imports."""

from channels import Channel, Group  # noqa: F401
from channels.auth import (  # noqa: F401
    channel_session_user,
    channel_session_user_from_http,
    http_session_user,
)
from channels.sessions import channel_session, enforce_ordering  # noqa: F401

# -- "Groups" ---------------------------------------------------------------

# Connected to websocket.connect
def ws_add(message):
    Group("chat").add(message.reply_channel)

# Connected to websocket.receive
def ws_message(message):
    Group("chat").send({
        "text": "[user] %s" % message.content['text'],
    })

# Connected to websocket.disconnect
def ws_disconnect(message):
    Group("chat").discard(message.reply_channel)


# -- "Enforcing Ordering" -------------------------------------------------------

# Connected to websocket.connect
@enforce_ordering(slight=True)
@channel_session_user_from_http
def ordered_ws_add(message):
    # Add them to the right group
    Group("chat-%s" % message.user.username[0]).add(message.reply_channel)

# Connected to websocket.receive
@enforce_ordering(slight=True)
@channel_session_user
def ordered_ws_message(message):
    Group("chat-%s" % message.user.username[0]).send(message.content)

# Connected to websocket.disconnect
@enforce_ordering(slight=True)
@channel_session_user
def ordered_ws_disconnect(message):
    Group("chat-%s" % message.user.username[0]).discard(message.reply_channel)
