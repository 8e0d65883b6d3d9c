from django.urls import re_path

from posts import views

urlpatterns = [
    re_path(r"^$", views.index),
    re_path(r"^liveblog/(?P<slug>[-\w]+)/post/$", views.post),
]
