"""Encryption of messages at rest in Redis (``symmetric_encryption_keys``).

The ``cryptography`` package's Fernet does the work: AES-128-CBC with an
HMAC-SHA256 tag, a timestamp and a random IV per token, from a maintained,
audited library rather than hand-rolled primitives. ``MultiFernet`` gives key
rotation: the first key encrypts, every key is tried when decrypting.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Sequence

from cryptography.fernet import InvalidToken, MultiFernet, Fernet

__all__ = ["Crypter", "InvalidToken"]


def fernet_key(secret: str | bytes) -> bytes:
    """Derive a Fernet key from any secret string (SHA-256, url-safe base64)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise TypeError(f"symmetric_encryption_keys must be non-empty str or bytes, not {secret!r}")
    return base64.urlsafe_b64encode(hashlib.sha256(secret).digest())


class Crypter:
    """Encrypts with the first key, decrypts with any of them.

    Args:
        keys: secrets, newest first. Put a new key first to rotate; keep old
            ones until messages encrypted with them have expired.

    Raises:
        TypeError: ``keys`` is not a non-empty list of strings or bytes.
    """

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, (str, bytes)) or not keys:
            raise TypeError(f"symmetric_encryption_keys must be a non-empty list of secrets, not {keys!r}")
        self._fernet = MultiFernet([Fernet(fernet_key(key)) for key in keys])

    def encrypt(self, data: bytes) -> bytes:
        """Return ``data`` as a Fernet token under the first key."""
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """Return the plaintext; raises ``InvalidToken`` if no key fits."""
        return self._fernet.decrypt(token)
