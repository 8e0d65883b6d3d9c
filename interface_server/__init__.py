"""The interface server: HTTP/1.1 and WebSocket over Twisted + Autobahn.

It turns every HTTP request and WebSocket event into a message on the
channel layer and relays replies from each client's reply channel back to
its socket. Embed it with :class:`interface_server.server.Server` or run it
with the ``interface-server`` command.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "1.2.0"
