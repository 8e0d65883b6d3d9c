"""URLs of the chat app."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/new/", views.new_room, name="new-room"),
    path("room/<slug:slug>/", views.room, name="room"),
    path("room/<slug:slug>/messages/", views.messages, name="messages"),
    path("static/<path:path>", views.static, name="static"),
]
