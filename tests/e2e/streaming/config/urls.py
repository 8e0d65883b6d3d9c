from django.urls import path

from news import views

urlpatterns = [
    path("", views.index),
    path("post/<str:room>/", views.post),
    path("tally/<int:times>/", views.tally),
    path("stream/", views.stream),
]
