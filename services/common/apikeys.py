"""Server API keys as ``PARLEY_API_KEYS`` spells them (pure): comma-separated
``name:key:scope+scope`` entries. Errors name the variable and the entry's name, never the key.

Scopes: ``publish`` (messages, events, notifications), ``rooms`` (server-side join/leave),
``read`` (members, history, presence), ``admin`` (on behalf of a user, disconnect; implies
every other scope). A key is looked up in constant time (``find``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from .errors import SettingsError

SCOPES = ("publish", "rooms", "read", "admin")
MIN_KEY_CHARS = 24
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KEY_VAR = "PARLEY_API_KEYS"


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes = field(repr=False)  # sha256 of the key: compared, never the key itself
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_api_keys(spec: str) -> tuple[ApiKey, ...]:
    keys: list[ApiKey] = []
    for n, entry in enumerate(filter(None, (e.strip() for e in spec.split(","))), 1):
        parts = entry.split(":")
        if len(parts) != 3:
            raise SettingsError(f"{KEY_VAR}: entry {n} is not name:key:scope+scope")
        name, key, scopes_spec = (p.strip() for p in parts)
        if not _NAME.match(name):
            raise SettingsError(f"{KEY_VAR}: entry {n}: bad name (letters, digits, _ . -)")
        if len(key) < MIN_KEY_CHARS:
            raise SettingsError(
                f"{KEY_VAR}: key {name!r} is shorter than {MIN_KEY_CHARS} characters"
            )
        scopes = frozenset(s.strip() for s in scopes_spec.split("+") if s.strip())
        unknown = sorted(scopes - set(SCOPES))
        if not scopes or unknown:
            raise SettingsError(
                f"{KEY_VAR}: key {name!r}: scopes must be some of {'+'.join(SCOPES)}, "
                f"got {scopes_spec!r}"
            )
        digest = _digest(key)
        for other in keys:
            if other.name == name:
                raise SettingsError(f"{KEY_VAR}: name {name!r} given twice")
            if hmac.compare_digest(other.digest, digest):
                raise SettingsError(f"{KEY_VAR}: keys {other.name!r} and {name!r} are the same")
        keys.append(ApiKey(name, digest, scopes))
    return tuple(keys)


def find(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The key whose secret is ``presented``; every configured key is compared (constant
    time in the secret, and in which key matched)."""
    digest = _digest(presented)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found
