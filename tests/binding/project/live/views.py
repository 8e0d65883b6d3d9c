from django.http import HttpResponse
from django.shortcuts import render

from .models import Note


def new_note(request):
    note = Note.objects.create(text=request.GET["text"], author="view")
    return HttpResponse(str(note.pk))


def bridge_page(request):
    return render(request, "live/bridge.html")
