"""``Binding``: tie a model to groups of connections, both ways.

Outbound: every save or delete of the model sends ``create``, ``update`` or
``delete`` to the groups :meth:`Binding.group_names` names for the
instance. When an update moves an instance between groups, the groups it
left get a ``delete`` and the groups it joined a ``create``, so every client
sees a consistent set.

Inbound: ``Binding.consumer`` is a consumer (usually one stream of a
``WebsocketDemultiplexer``) that decodes ``create``/``update``/``delete``
requests and applies them after :meth:`Binding.has_permission` agrees. A
request that is refused or cannot be applied is answered with an error on
the same stream; nothing is raised into the worker.

A subclass with ``model`` set is registered (its signal receivers
connected) when the class is created; ``model`` may be a class or an
``"app_label.ModelName"`` string resolved once the app registry is ready.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from django.apps import apps
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..channel import Group

logger = logging.getLogger(__name__)

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ACTIONS = (CREATE, UPDATE, DELETE)

_SIGNALS = (("pre_save", pre_save), ("post_save", post_save), ("pre_delete", pre_delete), ("post_delete", post_delete))


class InboundError(Exception):
    """An inbound request cannot be applied; the message goes back to the client."""


class BindingMetaclass(type):
    """Registers every binding class that names a ``model`` as it is created."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> BindingMetaclass:
        cls = super().__new__(mcs, name, bases, namespace)
        if namespace.get("model") is not None:
            cls.register()
        return cls


class Binding(metaclass=BindingMetaclass):
    """Base binding; subclasses set the attributes below and implement the hooks.

    Attributes:
        model: the model class, or ``"app_label.ModelName"``.
        fields: names of the fields sent and accepted (``["__all__"]`` for all).
        exclude: or: names of fields never sent or accepted.
        stream: the demultiplexer stream the binding speaks on.
        channel_layer_alias: the layer groups are sent on.
        send_on_commit: send outbound messages when the surrounding
            transaction commits (nothing is sent for a rolled-back save)
            instead of at once.

    Hooks: :meth:`group_names`, :meth:`serialize`, :meth:`encode`,
    :meth:`deserialize`, :meth:`has_permission`, :meth:`create`,
    :meth:`update`, :meth:`delete`.
    """

    model: type[Model] | str | None = None
    fields: Iterable[str] | None = None
    exclude: Iterable[str] | None = None
    stream: str | None = None
    channel_layer_alias = DEFAULT_CHANNEL_LAYER
    send_on_commit = False

    # -- registration ---------------------------------------------------------------

    @classmethod
    def register(cls) -> None:
        """Connect this binding's signal receivers (done when the class is created).

        Raises:
            ValueError: neither or both of ``fields`` and ``exclude`` are set.
        """
        if (cls.fields is None) == (cls.exclude is None):
            raise ValueError(
                f"{cls.__name__} must set exactly one of fields (e.g. ['__all__']) or exclude; "
                f"it has fields={cls.fields!r}, exclude={cls.exclude!r}"
            )
        for name, signal in _SIGNALS:
            signal.connect(getattr(cls, f"_{name}"), sender=cls.model, weak=False, dispatch_uid=cls._uid(name))

    @classmethod
    def unregister(cls) -> None:
        """Disconnect this binding's signal receivers."""
        for name, signal in _SIGNALS:
            signal.disconnect(sender=cls.model, dispatch_uid=cls._uid(name))

    @classmethod
    def _uid(cls, name: str) -> str:
        return f"channels.binding:{cls.__module__}.{cls.__qualname__}:{id(cls)}:{name}"

    @classmethod
    def model_class(cls) -> type[Model]:
        """Return the bound model class (resolving a string ``model``)."""
        if isinstance(cls.model, str):
            return apps.get_model(cls.model)
        if cls.model is None:
            raise ValueError(f"{cls.__name__} has no model")
        return cls.model

    @classmethod
    def model_label(cls) -> str:
        """Return ``"app_label.modelname"`` of the bound model."""
        return cls.model_class()._meta.label_lower

    @classmethod
    def bound_field_names(cls) -> list[str]:
        """Return the names of the concrete fields this binding sends and accepts."""
        names = [field.name for field in cls.model_class()._meta.concrete_fields if not field.primary_key]
        fields = list(cls.fields) if cls.fields is not None else None
        if fields is not None and fields != ["__all__"]:
            return [name for name in names if name in fields]
        excluded = set(cls.exclude or ())
        return [name for name in names if name not in excluded]

    # -- outbound -------------------------------------------------------------------

    @classmethod
    def _pre_save(cls, instance: Model, raw: bool = False, **kwargs: Any) -> None:
        old: set[str] = set()
        if not instance._state.adding and instance.pk is not None:
            # The groups it is in now are those of the stored row, not of the
            # edited instance about to be saved.
            stored = type(instance)._default_manager.filter(pk=instance.pk).first()
            if stored is not None:
                old = set(cls.group_names(stored))
        cls._remember(instance, old)

    @classmethod
    def _post_save(cls, instance: Model, created: bool = False, **kwargs: Any) -> None:
        cls._changed(instance, set(cls.group_names(instance)))

    @classmethod
    def _pre_delete(cls, instance: Model, **kwargs: Any) -> None:
        cls._remember(instance, set(cls.group_names(instance)))
        instance.__dict__.setdefault("_binding_pk", instance.pk)

    @classmethod
    def _post_delete(cls, instance: Model, **kwargs: Any) -> None:
        cls._changed(instance, set())

    @classmethod
    def _remember(cls, instance: Model, groups: set[str]) -> None:
        instance.__dict__.setdefault("_binding_groups", {})[cls] = groups

    @classmethod
    def _changed(cls, instance: Model, new: set[str]) -> None:
        old = instance.__dict__.get("_binding_groups", {}).pop(cls, set())
        binding = cls()
        batches = [(old - new, DELETE), (old & new, UPDATE), (new - old, CREATE)]
        messages = [(sorted(groups), binding.message_for(instance, action)) for groups, action in batches if groups]
        if not messages:
            return
        if cls.send_on_commit:
            transaction.on_commit(lambda: binding.send_messages(messages))
        else:
            binding.send_messages(messages)

    def message_for(self, instance: Model, action: str) -> dict | None:
        """Return the group message announcing ``action`` on ``instance`` (None to send nothing)."""
        payload = self.serialize(instance, action)
        if not payload:
            return None
        return self.encode(self.stream, payload)

    def send_messages(self, batches: list[tuple[list[str], dict | None]]) -> None:
        """Send each message to its groups."""
        for groups, message in batches:
            if message is None:
                continue
            for name in groups:
                Group(name, alias=self.channel_layer_alias).send(message)

    @classmethod
    def group_names(cls, instance: Model) -> Iterable[str]:
        """Return the groups that should hear about ``instance`` (override)."""
        raise NotImplementedError(f"{cls.__name__} must implement group_names(instance)")

    def serialize(self, instance: Model, action: str) -> dict:
        """Return the payload describing ``action`` on ``instance`` (override)."""
        raise NotImplementedError(f"{type(self).__name__} must implement serialize(instance, action)")

    @classmethod
    def encode(cls, stream: str | None, payload: dict) -> dict:
        """Return the channel message carrying ``payload`` (override)."""
        raise NotImplementedError(f"{cls.__name__} must implement encode(stream, payload)")

    # -- inbound --------------------------------------------------------------------

    @classmethod
    def trigger_inbound(cls, message: Any, **kwargs: Any) -> None:
        """Consumer: decode a request from ``message`` and apply it (errors go back to the client)."""
        if not cls.accepts(message):
            return
        self = cls()
        self.message = message
        self.kwargs = kwargs
        self.user = getattr(message, "user", None)
        action = pk = None
        try:
            action, pk, data = self.deserialize(message)
            self.run_action(action, pk, data)
        except InboundError as exc:
            logger.info("Refused inbound %s of %s pk=%r: %s", action, cls.__name__, pk, exc)
            self.reply_error(str(exc), action, pk)

    consumer = trigger_inbound

    @classmethod
    def accepts(cls, message: Any) -> bool:
        """Return True if ``message`` carries a request (all messages, unless overridden)."""
        return True

    def run_action(self, action: str, pk: Any, data: dict) -> None:
        """Check permission, then call :meth:`create`, :meth:`update` or :meth:`delete`.

        Raises:
            InboundError: unknown action, permission refused, or the action failed.
        """
        if action not in ACTIONS:
            raise InboundError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        if action != CREATE and pk is None:
            raise InboundError(f"{action} needs a pk")
        if not self.has_permission(self.user, action, pk):
            raise InboundError(f"permission denied for {action}")
        if action == CREATE:
            self.create(data)
        elif action == UPDATE:
            self.update(pk, data)
        else:
            self.delete(pk)

    def has_permission(self, user: Any, action: str, pk: Any) -> bool:
        """Return True if ``user`` may apply ``action`` to ``pk``. Refuses everything unless overridden."""
        return False

    def deserialize(self, message: Any) -> tuple[str, Any, dict]:
        """Return ``(action, pk, data)`` from ``message`` (override). Raises ``InboundError`` if malformed."""
        raise NotImplementedError(f"{type(self).__name__} must implement deserialize(message)")

    def create(self, data: dict) -> None:
        """Create an instance from ``data``."""
        self.model_class()._default_manager.create(**data)

    def update(self, pk: Any, data: dict) -> None:
        """Update the instance ``pk`` with ``data``."""
        instance = self._get(pk)
        for name, value in data.items():
            setattr(instance, name, value)
        instance.save()

    def delete(self, pk: Any) -> None:
        """Delete the instance ``pk``."""
        self._get(pk).delete()

    def _get(self, pk: Any) -> Model:
        model = self.model_class()
        try:
            return model._default_manager.get(pk=pk)
        except (model.DoesNotExist, ValueError, TypeError):
            raise InboundError(f"no {model._meta.verbose_name} with pk {pk!r}") from None

    def reply_error(self, error: str, action: Any, pk: Any) -> None:
        """Tell the client its request failed (override to change the format)."""
        raise NotImplementedError(f"{type(self).__name__} must implement reply_error(error, action, pk)")
