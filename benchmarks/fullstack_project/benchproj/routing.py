from channels.routing import route


def ws_echo(message):
    message.reply_channel.send({"text": message.content["text"]})


channel_routing = [
    route("websocket.receive", ws_echo, path=r"^/echo/$"),
]
