"""Time-sortable message ids, unique across gateways.

An id is 26 characters of Crockford base32 (ULID layout): 48 bits of Unix time in milliseconds,
then 80 bits made of a random per-process node part (32 bits) and a per-process counter
(48 bits). Within one process ids strictly increase, even when the wall clock steps back (the
time part never decreases). Across processes, ids sort by their millisecond; two gateways whose
clocks disagree order their messages by their own clocks, so keep pod clocks in sync (NTP).

Ids are strings on the wire so that JavaScript never parses them as numbers.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import TypeGuard

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
ID_LENGTH = 26
_TIME_CHARS = 10
_MAX_TIME = (1 << 48) - 1
_COUNTER_BITS = 48


def _encode(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def is_valid_id(value: object) -> TypeGuard[str]:
    """True for a well-formed id (26 Crockford base32 characters, upper case)."""
    return (
        isinstance(value, str)
        and len(value) == ID_LENGTH
        and all(c in _DECODE for c in value)
        and value[0] in "01234567"
    )


def timestamp_ms(message_id: str) -> int:
    """The millisecond timestamp encoded in an id (raises ValueError if malformed)."""
    if not is_valid_id(message_id):
        raise ValueError(f"not a message id: {message_id!r}")
    value = 0
    for c in message_id[:_TIME_CHARS]:
        value = (value << 5) | _DECODE[c]
    return value


def lowest_id_at(ms: int) -> str:
    """The smallest id that can carry millisecond ``ms`` (useful as a range bound)."""
    return _encode(ms, _TIME_CHARS) + "0" * (ID_LENGTH - _TIME_CHARS)


class IdGenerator:
    """Produces strictly increasing ids in this process; thread-safe."""

    def __init__(self, node: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self._node = secrets.randbits(32) if node is None else node & 0xFFFFFFFF
        self._counter = secrets.randbits(_COUNTER_BITS - 8)
        self._last_ms = 0
        self._clock = clock
        self._lock = threading.Lock()

    def new_id(self) -> tuple[str, int]:
        """Return ``(id, ms)`` where ``ms`` is the timestamp the id carries."""
        with self._lock:
            ms = max(int(self._clock() * 1000), self._last_ms)
            if ms > _MAX_TIME:
                raise OverflowError("clock beyond the id range")
            self._last_ms = ms
            self._counter = (self._counter + 1) & ((1 << _COUNTER_BITS) - 1)
            if self._counter == 0:  # wrapped inside one millisecond: move time forward
                self._last_ms = ms = ms + 1
            low = (self._node << _COUNTER_BITS) | self._counter
            return _encode(ms, _TIME_CHARS) + _encode(low, ID_LENGTH - _TIME_CHARS), ms
