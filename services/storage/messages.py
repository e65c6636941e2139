"""Ports of the message pipeline: the durable log gateways append to, and the store.

Adapters: ``log_kafka`` (cluster), ``store_cassandra`` (cluster), ``store_sqlite`` (single-node
mode; it is both the log and the store), ``store_memory`` (unit tests).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Protocol

from services.common.model import Message, Receipt, Record


class MessageLog(Protocol):
    """Where a gateway appends an accepted message before acking it.

    Guarantee: when ``append`` returns, the message is durable (Kafka: acknowledged by every
    in-sync replica; SQLite: committed) and will reach the store exactly once by id. On any
    failure it raises ``Unavailable`` and nothing may be acked. Order: appends of one room
    keep their order (one Kafka partition per room key).
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, record: Record) -> None: ...

    async def healthy(self) -> bool: ...


class MessageStore(Protocol):
    """Stored messages per room, read oldest-first.

    ``write`` is idempotent: the same id always lands on the same row, so redelivery never
    duplicates; so is ``write_receipts`` (a reader is a set member). Reads return messages
    sorted by id ascending, each with ``read_by`` = sender, then readers in the order stored.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, messages: Sequence[Message]) -> None: ...

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None: ...

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        """The newest ``limit`` messages of the room, oldest-first."""
        ...

    async def contains(self, room_id: str, message_id: str) -> bool:
        """True if the room has the message (a point read)."""
        ...

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        """The first ``cap`` messages with id > ``since_id``; True if more remain."""
        ...

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """The newest ``limit`` messages with id < ``before_id``; True if older ones exist."""
        ...

    async def healthy(self) -> bool: ...


class MemoryMessageStore:
    def __init__(self) -> None:
        self._rooms: dict[str, list[str]] = {}
        self._by_id: dict[str, Message] = {}
        self._readers: dict[tuple[str, str], dict[str, None]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def write(self, messages: Sequence[Message]) -> None:
        for m in messages:
            if m.id in self._by_id:
                continue
            self._by_id[m.id] = m
            bisect.insort(self._rooms.setdefault(m.room_id, []), m.id)

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None:
        for r in receipts:
            self._readers.setdefault((r.room_id, r.message_id), {})[r.user_id] = None

    def _get(self, message_id: str) -> Message:
        m = self._by_id[message_id]
        return m.with_readers(list(self._readers.get((m.room_id, m.id), ())))

    def _ids(self, room_id: str) -> list[str]:
        return self._rooms.get(room_id, [])

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        return [self._get(i) for i in self._ids(room_id)[-limit:]]

    async def contains(self, room_id: str, message_id: str) -> bool:
        found = self._by_id.get(message_id)
        return found is not None and found.room_id == room_id

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        ids = self._ids(room_id)
        start = bisect.bisect_right(ids, since_id)
        page = ids[start : start + cap]
        return [self._get(i) for i in page], start + cap < len(ids)

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        ids = self._ids(room_id)
        end = len(ids) if before_id is None else bisect.bisect_left(ids, before_id)
        start = max(0, end - limit)
        return [self._get(i) for i in ids[start:end]], start > 0


class MemoryMessageLog:
    """Appends straight into a store (what a gateway sees as 'durable' in unit tests)."""

    def __init__(self, store: MemoryMessageStore) -> None:
        self.store = store
        self.appended: list[Record] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def append(self, record: Record) -> None:
        self.appended.append(record)
        if isinstance(record, Receipt):
            await self.store.write_receipts([record])
        else:
            await self.store.write([record])
