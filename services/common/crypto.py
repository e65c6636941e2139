"""Encryption at rest (optional): AES-256-GCM for message text and file bytes.

The gateway seals a message's text before it leaves the process (Redis recent log, Kafka,
and through the worker into Cassandra) and opens it when it reads history, so everything
below the gateway carries ciphertext only. A sealed text is
``enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``; the additional authenticated data
is the message id (file id for files), so a ciphertext cannot be moved to another message.

Keys come from ``PARLEY_ENCRYPTION_KEYS`` (``id:base64-32-bytes`` entries, comma-separated;
a Kubernetes Secret in production) and new values are sealed with
``PARLEY_ENCRYPTION_ACTIVE_KEY``. Every listed key still opens old values, so rotation is:
add the new key, make it active, and drop the old one once nothing sealed with it remains.
Values written without encryption stay readable. Keys are never logged or shown in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SettingsError

PREFIX = "enc:v1:"
BYTES_PREFIX = PREFIX.encode()


class Cipher:
    """Seal/open for text and bytes; a ``Cipher`` with no keys passes values through."""

    def __init__(self, keys: dict[str, bytes] | None = None, active: str | None = None) -> None:
        self._keys = {kid: AESGCM(key) for kid, key in (keys or {}).items()}
        if self._keys and active not in self._keys:
            raise SettingsError("PARLEY_ENCRYPTION_ACTIVE_KEY: must name one of the keys")
        self._active = active

    def __repr__(self) -> str:
        return f"Cipher(keys={sorted(self._keys)}, active={self._active!r})"

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @classmethod
    def from_settings(cls, spec: str, active: str) -> Cipher:
        keys: dict[str, bytes] = {}
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            kid, _, b64 = entry.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not kid or ":" in kid or len(key) != 32:
                raise SettingsError(
                    "PARLEY_ENCRYPTION_KEYS: each entry is id:base64 of 32 bytes "
                    f"(bad entry for key id {kid!r})"
                )
            keys[kid] = key
        return cls(keys, active or (next(iter(keys)) if keys else None))

    def _seal(self, data: bytes, aad: str) -> bytes:
        assert self._active is not None
        nonce = os.urandom(12)
        return nonce + self._keys[self._active].encrypt(nonce, data, aad.encode())

    def _open(self, kid: str, blob: bytes, aad: str) -> bytes:
        key = self._keys.get(kid)
        if key is None:
            raise ValueError(f"no key {kid!r} to open this value")
        try:
            return key.decrypt(blob[:12], blob[12:], aad.encode())
        except InvalidTag:
            raise ValueError("ciphertext does not authenticate") from None

    def seal_text(self, text: str, aad: str) -> str:
        if not self.enabled:
            return text
        blob = self._seal(text.encode(), aad)
        return f"{PREFIX}{self._active}:{base64.b64encode(blob).decode()}"

    def open_text(self, value: str, aad: str) -> str:
        if not value.startswith(PREFIX):
            return value
        kid, _, b64 = value[len(PREFIX) :].partition(":")
        return self._open(kid, base64.b64decode(b64), aad).decode()

    def seal_bytes(self, data: bytes, aad: str) -> bytes:
        if not self.enabled:
            return data
        assert self._active is not None  # enabled
        return BYTES_PREFIX + self._active.encode() + b":" + self._seal(data, aad)

    def open_bytes(self, data: bytes, aad: str) -> bytes:
        if not data.startswith(BYTES_PREFIX):
            return data
        kid, _, blob = data[len(BYTES_PREFIX) :].partition(b":")
        return self._open(kid.decode(), blob, aad)
