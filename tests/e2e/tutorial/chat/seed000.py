import os

from channels.generic.websocket import WebsocketConsumer


class ChatConsumer(WebsocketConsumer):

    def connect(self):
        self.username = "Anonymous"
        self.accept()
        self.send(text_data="[Welcome %s!]" % self.username)

    def receive(self, *, text_data):
        if text_data.startswith("/name"):
            self.username = text_data[5:].strip()
            self.send(text_data="[set your username to %s]" % self.username)
        elif text_data == "/pid":  # not in the seed: which worker ran this event
            self.send(text_data=str(os.getpid()))
        else:
            self.send(text_data=self.username + ": " + text_data)

    def disconnect(self, message):
        pass
