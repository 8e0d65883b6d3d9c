"""Security checks for consumers (see :mod:`channels.security.websockets`)."""
