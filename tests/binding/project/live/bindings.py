from channels.binding.websockets import WebsocketBinding

from .models import Note


class NoteBinding(WebsocketBinding):
    model = Note
    stream = "notes"
    fields = ["__all__"]

    @classmethod
    def group_names(cls, instance):
        return ["notes"]

    def has_permission(self, user, action, pk):
        return action in ("create", "update")
