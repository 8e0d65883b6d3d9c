"""WebSocket close codes, size limits and frame encoding, free of Twisted.

What RFC 6455 lets a server send, how big a client's message may be so that
its ``websocket.receive`` message still fits the channel layer, and the
header of an unmasked server frame.
"""

from __future__ import annotations

import struct

from asgi_backends.base import ChannelLayer, pack

__all__ = [
    "CLOSE_GOING_AWAY", "CLOSE_INTERNAL_ERROR", "CLOSE_INVALID_PAYLOAD", "CLOSE_MESSAGE_TOO_BIG", "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION", "CLOSE_PROTOCOL_ERROR", "CLOSE_TRY_AGAIN_LATER", "frame_header",
    "is_sendable_close_code", "layer_message_limit", "receive_envelope", "receive_payload_limit",
]

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

# RFC 6455 section 7.4 and the IANA registry: the codes an endpoint may put in a
# close frame. 1004 is reserved; 1005, 1006 and 1015 must never be sent.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})

# The largest ``order`` a connection could reach: msgpack's widest integer.
_LARGEST_ORDER = 2**64 - 1
# msgpack's widest str/bin header (5 bytes) less the one of an empty str (1 byte).
_PAYLOAD_HEADER_GROWTH = 4


def is_sendable_close_code(code: object) -> bool:
    """Return True if ``code`` may be sent in a close frame (RFC 6455 section 7.4).

    Those are 1000-1003, 1007-1014 and 3000-4999 (3000-3999 registered with
    IANA, 4000-4999 private to the application); anything else, including a
    ``bool`` or a string of digits, is not.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999


def layer_message_limit(layer: ChannelLayer) -> int:
    """Return the largest encoded message ``layer`` accepts (its ``max_message_size``)."""
    return layer.max_message_size


def receive_envelope(reply_channel: str, path: str) -> int:
    """Return the bytes a ``websocket.receive`` message takes beyond its payload, at most.

    That is the msgpack encoding of the message with an empty payload, the
    widest ``order`` and the widest str/bin header, which is how the layers
    measure a message against their ``max_message_size``.
    """
    skeleton = {"reply_channel": reply_channel, "path": path, "order": _LARGEST_ORDER, "text": ""}
    return len(pack(skeleton)) + _PAYLOAD_HEADER_GROWTH


def receive_payload_limit(layer: ChannelLayer, reply_channel: str, path: str) -> int:
    """Return the largest client message whose ``websocket.receive`` still fits ``layer``.

    Returns:
        The layer's message limit less :func:`receive_envelope`, at least 1.
    """
    return max(1, layer_message_limit(layer) - receive_envelope(reply_channel, path))


def frame_header(opcode: int, length: int) -> bytes:
    """Return the header of a final, unmasked frame (what a server sends) of ``length`` payload bytes."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)
