"""``clientMsgId`` idempotency: a retry within the window gets the first attempt's id.

A claim moves through two states: *pending* while the first attempt is being appended to the
log, then *done* with its message id. A retry that finds *done* returns that id and is not
delivered again; one that finds *pending* waits briefly for the outcome (and gets
``unavailable`` if the first attempt is still undecided). A failed attempt releases its claim,
so the next retry starts over. Redis keeps claims for every pod (``SET NX EX``); memory keeps
them for the single-node mode and tests.
"""

from __future__ import annotations

import asyncio
import time

from services.common.errors import Unavailable
from services.storage.claims import PENDING, Claim, ClaimStore


class Deduper:
    def __init__(self, store: ClaimStore, ttl_s: int = 600, wait_s: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl_s
        self._wait = wait_s

    @staticmethod
    def key(user_id: str, client_msg_id: str) -> str:
        return f"{user_id}\x1f{client_msg_id}"

    async def claim(self, user_id: str, client_msg_id: str, message_id: str) -> Claim:
        key = self.key(user_id, client_msg_id)
        existing = await self._store.put_if_absent(key, PENDING + message_id, self._ttl)
        deadline = time.monotonic() + self._wait
        while existing is not None:
            if not existing.startswith(PENDING):
                return Claim(False, existing)
            if time.monotonic() > deadline:
                raise Unavailable("previous attempt with this clientMsgId still in flight")
            await asyncio.sleep(0.05)
            existing = await self._store.get(key)
            if existing is None:  # the other attempt failed and released: try to take it
                existing = await self._store.put_if_absent(key, PENDING + message_id, self._ttl)
        return Claim(True, None)

    async def commit(self, user_id: str, client_msg_id: str, message_id: str) -> None:
        await self._store.put(self.key(user_id, client_msg_id), message_id, self._ttl)

    async def release(self, user_id: str, client_msg_id: str) -> None:
        await self._store.delete(self.key(user_id, client_msg_id))
