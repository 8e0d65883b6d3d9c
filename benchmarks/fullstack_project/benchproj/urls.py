from channels import Group
from django.http import HttpResponse
from django.urls import path


def ok(request):
    return HttpResponse("OK")


def broadcast(request):
    """W2 trigger (broadcast.py): send ``?stamp=`` to every member of group "bench"."""
    Group("bench").send({"text": request.GET.get("stamp", "")}, immediately=True)
    return HttpResponse("sent")


urlpatterns = [path("", ok), path("broadcast/", broadcast)]
