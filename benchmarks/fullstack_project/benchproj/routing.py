from channels import Group
from channels.routing import route


def ws_echo(message):
    message.reply_channel.send({"text": message.content["text"]})


def bench_join(message):
    # Join before accepting: once the client sees the handshake it is a member.
    Group("bench").add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def bench_leave(message):
    Group("bench").discard(message.reply_channel)


channel_routing = [
    route("websocket.receive", ws_echo, path=r"^/echo/$"),
    # W2 broadcast (broadcast.py): members of group "bench"; urls.broadcast sends to them.
    route("websocket.connect", bench_join, path=r"^/bench/$"),
    route("websocket.disconnect", bench_leave, path=r"^/bench/$"),
]
