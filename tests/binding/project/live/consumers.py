from channels.generic.websockets import JsonWebsocketConsumer, WebsocketDemultiplexer

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

