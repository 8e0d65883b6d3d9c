from django.apps import AppConfig


class PostsConfig(AppConfig):
    name = "posts"

    def ready(self):
        from channels.signals import worker_process_ready

        from . import signals

        worker_process_ready.connect(signals.announce)
