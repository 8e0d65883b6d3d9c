import os

from django.http import HttpResponse
from django.urls import path


def ok(request):
    return HttpResponse("OK")


def form(request):
    return HttpResponse(f"{request.method} {request.POST.get('name', '')} {len(request.body)}")


def pid(request):
    return HttpResponse(str(os.getpid()))


def boom(request):
    raise RuntimeError("view failed on purpose")


urlpatterns = [
    path("", ok),
    path("form/", form),
    path("boom/", boom),
    path("pid/", pid),
]
