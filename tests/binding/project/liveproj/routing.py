"""Routing: the notes stream at /notes/, the JavaScript bridge page's socket at /bridge/."""

from channels.routing import route_class

from live.consumers import BridgeDemultiplexer, NotesDemultiplexer

channel_routing = [
    route_class(NotesDemultiplexer, path=r"^/notes/$"),
    route_class(BridgeDemultiplexer, path=r"^/bridge/$"),
]
