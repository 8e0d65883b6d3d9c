"""Pages and the small JSON API of the chat example.

Every view here runs inside a worker, like any Django view under channels;
:func:`messages` shows that a view can feed the ``chat-messages`` channel just
as a WebSocket consumer does.
"""

from __future__ import annotations

import json

from channels import Channel
from django.contrib.staticfiles.views import serve
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .consumers import clean_nick
from .models import MAX_MESSAGE_LENGTH, ChatMessage, Room

HISTORY = 100


def index(request: HttpRequest) -> HttpResponse:
    """Send the visitor to the first room."""
    first = Room.objects.order_by("id").first()
    if first is None:
        first = Room.objects.create(slug="lobby", title="Lobby")
    return redirect("room", slug=first.slug)


@require_POST
def new_room(request: HttpRequest) -> HttpResponse:
    """Create a room from the sidebar form (or find the one with that name) and open it."""
    title = " ".join(request.POST.get("title", "").split())[:100]
    slug = slugify(title)[:50]
    if not slug:
        return redirect("index")
    room, _ = Room.objects.get_or_create(slug=slug, defaults={"title": title})
    return redirect("room", slug=room.slug)


def room(request: HttpRequest, slug: str) -> HttpResponse:
    """The chat page: room list, the last messages of this room, and the input box."""
    current = get_object_or_404(Room, slug=slug)
    recent = list(current.messages.order_by("-id")[:HISTORY])
    return render(request, "chat/room.html", {
        "room": current,
        "rooms": Room.objects.all(),
        "history": [message.as_dict() for message in reversed(recent)],
        "max_length": MAX_MESSAGE_LENGTH,
    })


@csrf_exempt  # JSON only: a browser cannot send it cross-site without a CORS preflight
@require_http_methods(["GET", "POST"])
def messages(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: messages after ``?after=<id>`` (what the page missed while offline).

    POST ``{"nick": .., "message": ..}`` as JSON: say something in the room
    through the ``chat-messages`` channel (202; it shows up once saved).
    """
    current = get_object_or_404(Room, slug=slug)
    if request.method == "GET":
        try:
            after = int(request.GET.get("after", "0"))
        except ValueError:
            return JsonResponse({"error": "after must be a message id (an integer)"}, status=400)
        found = ChatMessage.objects.filter(room=current, id__gt=after).order_by("id")[:500]
        return JsonResponse({"messages": [message.as_dict() for message in found]})
    if request.content_type != "application/json":
        return JsonResponse({"error": "send JSON with Content-Type: application/json"}, status=415)
    try:
        body = json.loads(request.body)
        text = str(body["message"]).strip()
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": 'expected {"nick": "...", "message": "..."}'}, status=400)
    if not text or len(text) > MAX_MESSAGE_LENGTH:
        return JsonResponse({"error": f"message must be 1-{MAX_MESSAGE_LENGTH} characters"}, status=400)
    Channel("chat-messages").send({"room": current.slug, "nick": clean_nick(body.get("nick")),
                                   "message": text})
    return JsonResponse({"queued": True}, status=202)


def static(request: HttpRequest, path: str) -> HttpResponse:
    """Serve the app's static files, so the example also works without ``runserver``.

    A real deployment lets nginx serve ``collectstatic``'s output instead.
    """
    return serve(request, path, insecure=True)
