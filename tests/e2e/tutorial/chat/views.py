import os

from django.http import HttpResponse
from django.shortcuts import render


def index(request):
    return HttpResponse("chat index (pid %d)" % os.getpid())


def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name})
