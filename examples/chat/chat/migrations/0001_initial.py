"""Rooms and chat messages."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("slug", models.SlugField(unique=True)),
                ("title", models.CharField(max_length=100)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["title"]},
        ),
        migrations.CreateModel(
            name="ChatMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("nick", models.CharField(max_length=32)),
                ("message", models.TextField(max_length=2000)),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="messages", to="chat.room")),
            ],
            options={"ordering": ["id"]},
        ),
    ]
