"""Three rooms to start with, so a fresh install has somewhere to talk."""

from django.db import migrations

ROOMS = [("lobby", "Lobby"), ("random", "Random"), ("help", "Help")]


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for slug, title in ROOMS:
        Room.objects.get_or_create(slug=slug, defaults={"title": title})


def remove_rooms(apps, schema_editor):
    apps.get_model("chat", "Room").objects.filter(slug__in=[slug for slug, _ in ROOMS]).delete()


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_rooms, remove_rooms)]
