"""Models the binding tests (and the end-to-end project) bind to."""

from django.db import models


class Item(models.Model):
    """A named value owned by a user name."""

    name = models.CharField(max_length=50)
    value = models.IntegerField(default=0)
    owner = models.CharField(max_length=50, blank=True, default="")
    secret = models.CharField(max_length=50, blank=True, default="")

    class Meta:
        app_label = "binding"
