"""Channel routing: which consumer runs for which channel (the ``urls.py`` of channels)."""

from channels.routing import include, route, route_class

from chat import consumers
from chat.bindings import RoomListDemultiplexer

# WebSocket paths look like /chat/<room-slug>/; include() adds the /chat prefix.
chat_routing = [
    route("websocket.connect", consumers.ws_connect, path=r"^/(?P<room>[a-z0-9][a-z0-9-]{0,49})/$"),
    route("websocket.receive", consumers.ws_message),
    route("websocket.disconnect", consumers.ws_disconnect),
]

channel_routing = [
    include(chat_routing, path=r"^/chat"),
    # Data binding demo: live room list (see chat/bindings.py).
    route_class(RoomListDemultiplexer, path=r"^/rooms/$"),
    # A socket opened on any other path is refused rather than left dangling.
    route("websocket.connect", consumers.ws_reject),
    # Our own channel: saves a message and broadcasts it to the room.
    route("chat-messages", consumers.msg_consumer),
]
