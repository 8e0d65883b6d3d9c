"""Data binding demo: every socket on ``/rooms/`` hears about rooms being created, renamed or deleted.

Try it from a browser console while the example runs::

    const bridge = new channels.WebSocketBridge();   // /static/channels/js/websocketbridge.js
    bridge.connect("/rooms/");
    bridge.demultiplex("rooms", (payload) => console.log(payload.action, payload.data));

then add a room (``python manage.py shell -c "from chat.models import Room;
Room.objects.create(slug='garden', title='Garden')"``). The stream is
read-only: the binding's ``has_permission`` refuses every inbound request.
"""

from __future__ import annotations

from channels.binding.websockets import WebsocketBinding
from channels.generic.websockets import WebsocketDemultiplexer

from .models import Room


class RoomBinding(WebsocketBinding):
    """Room saves and deletes, broadcast to the ``rooms`` group on the ``rooms`` stream."""

    model = Room
    stream = "rooms"
    fields = ["slug", "title"]

    @classmethod
    def group_names(cls, instance: Room) -> list[str]:
        return ["rooms"]


class RoomListDemultiplexer(WebsocketDemultiplexer):
    """The ``/rooms/`` socket: joins the ``rooms`` group and carries the ``rooms`` stream."""

    consumers = {"rooms": RoomBinding.consumer}
    groups = ["rooms"]
