import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from news import consumers  # noqa: E402

application = ProtocolTypeRouter({
    "http": URLRouter([
        path("events/<str:room>/", consumers.ServerSentEventsConsumer.as_asgi()),
        path("poll/", consumers.LongPollConsumer.as_asgi()),
        re_path(r"^fail/", consumers.FailingConsumer.as_asgi()),
        re_path(r"", django_asgi_app),
    ]),
    "channel": ChannelNameRouter({"tally": consumers.TallyConsumer.as_asgi()}),
})
