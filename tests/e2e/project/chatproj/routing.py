from chat.consumers import ws_connect, ws_disconnect, ws_echo, ws_message

from channels.routing import include, route

echo_routing = [
    route("websocket.receive", ws_echo),
]

chat_routing = [
    route("websocket.connect", ws_connect),
    route("websocket.receive", ws_message),
    route("websocket.disconnect", ws_disconnect),
]

channel_routing = [
    # Seed 003's first consumer, under /hello/ so Django views keep the rest.
    route("http.request", "chat.consumers.http_consumer", path=r"^/hello/"),
    include(echo_routing, path=r"^/echo/$"),
    include(chat_routing),
]
