"""HTTP side: every answer names the worker's pid and echoes the request's sequence key."""

import os
import time

from django.http import HttpResponse
from django.urls import path

from channels import Group

from .journal import mark


def work(request):
    """``/?k=KEY&ms=N``: spend N ms (a consumer in the middle of its work), answer ``pid KEY``."""
    key = request.GET.get("k", "")
    mark("S", key)
    ms = int(request.GET.get("ms", "0"))
    if ms:
        time.sleep(ms / 1000)
    response = HttpResponse(f"{os.getpid()} {key}")
    # The response is sent when the consumer returns; "E" is close enough to it for counting.
    mark("E", key)
    return response


def broadcast(request):
    """``/broadcast/?k=KEY``: send KEY to every member of group "room"."""
    key = request.GET.get("k", "")
    mark("S", key)
    Group("room").send({"text": key}, immediately=True)
    mark("E", key)
    return HttpResponse(f"{os.getpid()} {key}")


urlpatterns = [path("", work), path("broadcast/", broadcast)]
