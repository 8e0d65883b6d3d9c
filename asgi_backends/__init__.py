"""Channel layers: the transport between interface servers and workers.

* :mod:`asgi_backends.inmemory` -- one process (tests, ``runserver``).
* :mod:`asgi_backends.redis` -- production, across machines.
* :mod:`asgi_backends.retry` -- the one policy for retrying a send that met
  ``ChannelFull``.

Every layer implements :class:`asgi_backends.base.BaseChannelLayer` and
passes :mod:`asgi_backends.conformance`. This package imports nothing else
of the project and no Django.
"""

from .exceptions import ChannelFull, ChannelLayerError, LayerUnavailable, MessageTooLarge

__all__ = ["ChannelFull", "ChannelLayerError", "LayerUnavailable", "MessageTooLarge"]
