"""Routing: the notes stream at /notes/, the bridge page's socket at /bridge/, an origin-checked echo."""

from live.consumers import BridgeDemultiplexer, GuardedEcho, NotesDemultiplexer

from channels.routing import route_class

channel_routing = [
    route_class(NotesDemultiplexer, path=r"^/notes/$"),
    route_class(BridgeDemultiplexer, path=r"^/bridge/$"),
    route_class(GuardedEcho, path=r"^/guarded/$"),
]
