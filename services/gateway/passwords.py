"""Password hashing with bcrypt, run on CPU threads (slow by design, ~0.25 s at cost 12).

bcrypt reads at most 72 bytes and bcrypt 5 refuses longer input. A password can be 256
characters (up to 1 KiB of UTF-8), so the NFC-normalised password is hashed with SHA-256 first
and bcrypt gets the base64 of that digest (44 bytes, no NUL). Stored hashes start with
``bcrypt-sha256$`` so the scheme can change later. ``check`` without a stored hash verifies
against a dummy hash of the same cost: an unknown username takes as long as a wrong password.
Hashing is bounded to one thread per CPU so logins cannot use up asyncio's default executor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

import bcrypt

from . import metrics

T = TypeVar("T")

SCHEME = "bcrypt-sha256$"


def _prehash(password: str) -> bytes:
    normalized = unicodedata.normalize("NFC", password).encode("utf-8")
    return base64.b64encode(hashlib.sha256(normalized).digest())


def hash_password(password: str, rounds: int = 12) -> str:
    """The stored form of ``password`` (blocking: call it through ``Hasher``)."""
    return SCHEME + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; False for any malformed stored hash."""
    if not stored.startswith(SCHEME):
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored[len(SCHEME) :].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


def dummy_hash(rounds: int) -> str:
    """A well-formed hash that matches nothing but still costs a full check at ``rounds``."""
    return f"{SCHEME}$2b${rounds:02d}$" + "." * 53


class Busy(Exception):
    """Too many hashes are already waiting: answer 503 with ``Retry-After``."""


class Hasher:
    """Async hashing on threads, at most ``concurrency`` at a time and at most
    ``max_pending`` more waiting; beyond that ``Busy`` at once (a flood of registrations or
    logins is refused instead of queueing without bound and delaying everyone's login)."""

    def __init__(
        self, rounds: int = 12, concurrency: int | None = None, max_pending: int = 16
    ) -> None:
        self.rounds = rounds
        self._dummy = dummy_hash(rounds)
        self._concurrency = concurrency or os.cpu_count() or 2
        self._gate = asyncio.Semaphore(self._concurrency)
        self._max_in = self._concurrency + max_pending
        self._in = 0  # running + waiting

    async def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in >= self._max_in:
            metrics.PASSWORD_HASH_BUSY.inc()
            raise Busy(f"{self._in} hashes in progress or waiting")
        self._in += 1
        try:
            return await self._gated(fn, *args)
        finally:
            self._in -= 1

    async def _gated(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._gate:
            started = time.perf_counter()
            try:
                return await asyncio.to_thread(fn, *args)
            finally:
                metrics.PASSWORD_HASH_SECONDS.observe(time.perf_counter() - started)

    async def hash(self, password: str) -> str:
        return await self._timed(hash_password, password, self.rounds)

    async def check(self, password: str, stored: str | None) -> bool:
        """Verify ``password``; with ``stored=None`` do the same work and return False."""
        ok = await self._timed(check_password, password, stored or self._dummy)
        return ok and stored is not None
