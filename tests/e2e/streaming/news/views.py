"""Django views of the streaming project, served by the workers' view path behind the URLRouter."""

import os

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpResponse, StreamingHttpResponse


def index(request):
    return HttpResponse("home (pid %d)" % os.getpid())


def post(request, room):
    """group_send a news item to a room's open streams; answer how many streams it went to."""
    layer = get_channel_layer()
    group = "news_" + room
    # Counted first: an event that ends a stream makes its consumer leave the group at once.
    members = len(layer.backend.group_channels(group))
    event = {"type": "news.item", "text": request.GET.get("text", ""), "last": "last" in request.GET}
    async_to_sync(layer.group_send)(group, event)
    return HttpResponse(str(members))


def tally(request, times):
    """Send ``times`` messages to the named channel "tally"."""
    layer = get_channel_layer()
    for _ in range(times):
        async_to_sync(layer.send)("tally", {"type": "tally.add", "room": request.GET.get("room", "tally")})
    return HttpResponse("sent")


def stream(request):
    return StreamingHttpResponse(iter([b"one,", b"two,", b"three"]))
