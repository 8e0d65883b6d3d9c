from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path
from live import views

urlpatterns = [
    path("notes/new/", views.new_note),
    path("bridge.html", views.bridge_page),
    *staticfiles_urlpatterns(),
]
