from channels.routing import route

from .consumers import accept, churn_join, churn_leave, echo, forget, room_join, room_leave

channel_routing = [
    route("websocket.connect", accept, path=r"^/echo/$"),
    route("websocket.disconnect", forget, path=r"^/echo/$"),
    route("websocket.receive", echo, path=r"^/(?:echo|churn)/$"),
    route("websocket.connect", room_join, path=r"^/room/$"),
    route("websocket.disconnect", room_leave, path=r"^/room/$"),
    route("websocket.connect", churn_join, path=r"^/churn/$"),
    route("websocket.disconnect", churn_leave, path=r"^/churn/$"),
]
