"""``BaseConsumer``: a class whose methods handle the channels it maps.

A class-based consumer is routed with :func:`~channels.routing.route_class`;
the router listens on the channels named in ``method_mapping`` and calls the
class for each message, so every message gets a fresh instance (keep state in
sessions, never on ``self`` between messages).
"""

from __future__ import annotations

from typing import Any, Callable

from ..auth import channel_session_user
from ..message import Message
from ..routing import RouteClass, route_class
from ..sessions import channel_session


class BaseConsumer:
    """Dispatch a message to the method ``method_mapping`` names for its channel.

    Class attributes:
        method_mapping: ``{channel name: method name}``; the channels
            ``route_class`` routes to this class.
        channel_session: wrap handlers in
            :func:`~channels.sessions.channel_session`.
        channel_session_user: wrap handlers in
            :func:`~channels.auth.channel_session_user` (implies the former).

    Instantiating the class handles the message: ``Consumer(message,
    **kwargs)`` is what the worker calls.
    """

    method_mapping: dict[str, str] = {}
    channel_session = False
    channel_session_user = False

    def __init__(self, message: Message, **kwargs: Any) -> None:
        self.message = message
        self.kwargs = kwargs
        self.dispatch(message, **kwargs)

    @classmethod
    def channel_names(cls) -> set[str]:
        """Return the channels this consumer handles (the keys of ``method_mapping``)."""
        return set(cls.method_mapping)

    @classmethod
    def as_route(cls, attrs: dict[str, Any] | None = None, **kwargs: Any) -> RouteClass:
        """Return a ``route_class`` for this consumer.

        Args:
            attrs: class attributes to override, in a subclass made on the fly
                (``Chat.as_route(attrs={"groups": ["chat"]}, path=r"^/chat/$")``).
            **kwargs: routing filters, as for ``route_class``.

        Raises:
            TypeError: ``attrs`` is not a dict.
        """
        consumer: type[BaseConsumer] = cls
        if attrs is not None:
            if not isinstance(attrs, dict):
                raise TypeError(f"as_route(attrs=...) takes a dict of class attributes, not {attrs!r}")
            consumer = type(cls.__name__, (cls,), dict(attrs))
        return route_class(consumer, **kwargs)

    def method_name_for(self, channel: str) -> str:
        """Return the method name mapped to ``channel`` (a ``prefix!`` entry covers its channels).

        Raises:
            ValueError: nothing in ``method_mapping`` covers ``channel``.
        """
        name = self.method_mapping.get(channel)
        if name is None and "!" in channel:
            name = self.method_mapping.get(channel[: channel.index("!") + 1])
        if name is None:
            raise ValueError(
                f"{type(self).__name__} got a message on {channel!r}, which its method_mapping "
                f"{self.method_mapping!r} does not list; route it with route_class() or add the channel"
            )
        return name

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """Return the bound method for ``message``'s channel, wrapped in the session decorators asked for."""
        handler = getattr(self, self.method_name_for(message.channel.name))
        if self.channel_session_user:
            return channel_session_user(handler)
        if self.channel_session:
            return channel_session(handler)
        return handler

    def dispatch(self, message: Message, **kwargs: Any) -> Any:
        """Call the handler for ``message`` with the routing's keyword arguments; return its result."""
        return self.get_handler(message, **kwargs)(message, **kwargs)
