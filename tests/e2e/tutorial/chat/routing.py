from django.urls import re_path

from . import consumers
from . import faults
from . import seed000

websocket_urlpatterns = [
    re_path(r'ws/chat/(?P<room_name>\w+)/$', consumers.ChatConsumer.as_asgi()),
    # Seed 000's consumer, next to the tutorial's.
    re_path(r'ws/anon/$', seed000.ChatConsumer.as_asgi()),
    # For the fault tests.
    re_path(r'ws/slow/$', faults.SlowConsumer.as_asgi()),
]
