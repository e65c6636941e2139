"""Revoked tokens: ``admin:kick {userId, revoke: true}`` puts the ``jti`` of every token the
user's live sockets hold on a denylist until the token's ``exp``, so a kicked user cannot
reconnect with the same token. Handshakes on every namespace and file downloads check it.

Guarantee: once ``add`` returned, ``revoked`` is true for that ``jti`` on every gateway
(Redis in cluster mode, one process in single-node mode) until the token's expiry, after
which the token is refused anyway. Tokens without a ``jti`` cannot be revoked one by one
(every token Parley issues has one); rotate the secret to revoke those.
"""

from __future__ import annotations

import time
from typing import Protocol


class Revocations(Protocol):
    async def add(self, jti: str, exp_s: int) -> None: ...

    async def revoked(self, jti: str) -> bool: ...


class MemoryRevocations:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def add(self, jti: str, exp_s: int) -> None:
        self._until[jti] = exp_s
        now = time.time()
        if len(self._until) > 10_000:  # expired entries are useless: drop them
            self._until = {j: t for j, t in self._until.items() if t > now}

    async def revoked(self, jti: str) -> bool:
        until = self._until.get(jti)
        return until is not None and until > time.time()
