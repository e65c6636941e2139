"""In-memory message store and log: the unit-test fake (no durability, one process)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from services.common.model import Message, Receipt, Record


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
