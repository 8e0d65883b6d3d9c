"""Views the live worker serves: they read what the test wrote, and report the worker's threads."""

import threading

from django.contrib.auth.models import User
from django.http import HttpResponse, HttpResponseNotFound
from django.urls import path


def user(request, username):
    """``username #id`` for a user the test created, 404 otherwise."""
    found = User.objects.filter(username=username).first()
    if found is None:
        return HttpResponseNotFound(f"no user {username}")
    return HttpResponse(f"{found.username} #{found.pk}")


def worker_threads(request):
    """How many consumer threads this worker process runs (the Worker names them worker-N)."""
    names = [thread.name for thread in threading.enumerate()]
    return HttpResponse(str(sum(name.startswith("worker-") and name[7:].isdigit() for name in names)))


urlpatterns = [
    path("users/<str:username>/", user),
    path("threads/", worker_threads),
]
