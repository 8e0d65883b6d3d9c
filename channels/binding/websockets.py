"""``WebsocketBinding``: a model bound to a demultiplexed WebSocket stream.

::

    class ItemBinding(WebsocketBinding):
        model = "shop.Item"
        stream = "items"
        fields = ["name", "price"]

        @classmethod
        def group_names(cls, instance):
            return ["items"]

        def has_permission(self, user, action, pk):
            return user is not None and user.is_staff

    class Demultiplexer(WebsocketDemultiplexer):
        http_user = True
        consumers = {"items": ItemBinding.consumer}

        def connection_groups(self, **kwargs):
            return ["items"]

Outbound frames: ``{"stream": "items", "payload": {"action": "update",
"pk": 3, "model": "shop.item", "data": {"name": ..., "price": ...}}}``.
Inbound payloads: ``{"action": "create"|"update"|"delete", "pk": ...,
"data": {...}}``. Failures are answered on the stream with
``{"error": "...", "action": ..., "pk": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError, transaction
from django.db.models import Model

from ..generic.websockets import WebsocketMultiplexer
from .base import Binding, InboundError


class WebsocketBinding(Binding):
    """A :class:`~channels.binding.base.Binding` speaking JSON on a demultiplexer stream."""

    @classmethod
    def encode(cls, stream: str | None, payload: dict) -> dict:
        """Return the WebSocket frame carrying ``payload`` on ``stream``."""
        if not stream:
            raise ValueError(f"{cls.__name__} needs a stream name (set stream = '...')")
        return WebsocketMultiplexer.encode(stream, payload)

    def serialize(self, instance: Model, action: str) -> dict:
        """Return ``{"action", "pk", "model", "data"}`` for ``instance``."""
        pk = instance.__dict__.get("_binding_pk", instance.pk)
        return {"action": action, "pk": pk, "model": self.model_label(), "data": self.serialize_data(instance)}

    def serialize_data(self, instance: Model) -> dict:
        """Return the bound fields of ``instance`` as JSON-ready values."""
        text = serializers.serialize("json", [instance], fields=self.bound_field_names())
        return json.loads(text)[0]["fields"]

    def deserialize(self, message: Any) -> tuple[str, Any, dict]:
        """Read ``(action, pk, data)`` from the frame's JSON text.

        Raises:
            InboundError: the text is not a JSON object with an ``action``,
                or ``data`` is not an object.
        """
        try:
            body = json.loads(message.content.get("text") or "")
        except ValueError as exc:
            raise InboundError(f"invalid JSON: {exc}") from None
        if not isinstance(body, dict) or "action" not in body:
            raise InboundError('expected an object with "action" (and "pk", "data")')
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise InboundError(f'"data" must be an object, not {data!r:.80}')
        return body["action"], body.get("pk"), data

    @classmethod
    def accepts(cls, message: Any) -> bool:
        """Only ``websocket.receive`` frames carry requests; connects and disconnects are ignored."""
        return message.channel.name == "websocket.receive"

    def _checked_data(self, data: dict) -> dict:
        allowed = set(self.bound_field_names())
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InboundError(f"fields {unknown} cannot be set (settable: {sorted(allowed)})")
        return data

    def _hydrate(self, pk: Any, data: dict) -> Model:
        try:
            objects = list(serializers.deserialize("python", [{"model": self.model_label(), "pk": pk, "fields": data}]))
        except DeserializationError as exc:
            raise InboundError(f"invalid data: {exc.__cause__ or exc}") from None
        return objects[0].object

    def _save(self, instance: Model, names: list[str]) -> None:
        others = [f.name for f in instance._meta.fields if f.name not in names]
        try:
            instance.clean_fields(exclude=others)
            with transaction.atomic():
                instance.save()
        except ValidationError as exc:
            raise InboundError(f"invalid data: {exc.message_dict}") from None
        except DatabaseError as exc:
            raise InboundError(f"could not save: {exc}") from None

    def create(self, data: dict) -> None:
        """Create an instance from the bound fields in ``data``."""
        instance = self._hydrate(None, self._checked_data(data))
        self._save(instance, list(data))

    def update(self, pk: Any, data: dict) -> None:
        """Set the bound fields in ``data`` on instance ``pk`` and save it."""
        data = self._checked_data(data)
        instance = self._get(pk)
        hydrated = self._hydrate(pk, data)
        for name in data:
            setattr(instance, name, getattr(hydrated, name))
        self._save(instance, list(data))

    def reply_error(self, error: str, action: Any, pk: Any) -> None:
        """Send ``{"error", "action", "pk"}`` on the stream (or as a bare frame without a demultiplexer)."""
        payload = {"error": error, "action": action, "pk": pk}
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            multiplexer.send(payload)
        elif self.message.reply_channel is not None:
            self.message.reply_channel.send({"text": json.dumps(payload)})


class WebsocketBindingWithMembers(WebsocketBinding):
    """A :class:`WebsocketBinding` that also sends attributes and methods of the instance.

    ``send_members`` lists attribute names (``"author.username"`` follows
    relations); callables are called. Their values are added to ``data``,
    encoded as JSON the way Django encodes dates, decimals and UUIDs.
    """

    send_members: list[str] = []

    def serialize_data(self, instance: Model) -> dict:
        """Return the bound fields plus the ``send_members`` values."""
        data = super().serialize_data(instance)
        for name in self.send_members:
            value: Any = instance
            for part in name.split("."):
                value = getattr(value, part)
                if callable(value):
                    value = value()
            data[name] = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
        return data


__all__ = ["WebsocketBinding", "WebsocketBindingWithMembers"]
