from channels.generic.websockets import JsonWebsocketConsumer, WebsocketDemultiplexer
from channels.security.websockets import allowed_hosts_only

from .bindings import NoteBinding


class NotesDemultiplexer(WebsocketDemultiplexer):
    consumers = {"notes": NoteBinding.consumer}
    groups = ["notes"]


class Echo(JsonWebsocketConsumer):
    def receive(self, content, **kwargs):
        if content.get("close"):
            self.close()
        else:
            self.send({"echo": content})


class BridgeDemultiplexer(WebsocketDemultiplexer):
    consumers = {"echo": Echo, "notes": NoteBinding.consumer}
    groups = ["notes"]



@allowed_hosts_only
class GuardedEcho(Echo):
    """Echo, for pages of this site only (Origin checked against ALLOWED_HOSTS)."""
