"""Read-your-writes: a short per-room log of accepted messages and receipts, merged into reads.

The gateway writes a message here *before* appending it to Kafka (and removes it if Kafka
refuses), so once a client holds an ``ok`` ack the message is visible to ``room:history``,
resync and ``chat:history`` on every gateway, even while the worker has not stored it yet.
``ReadYourWritesStore`` wraps the real store for reads: it unions both sources, de-duplicates
by id, and merges readers into ``readBy``. Bounds: the newest ``RECENT_PER_ROOM`` messages of a
room for ``RECENT_TTL_S`` after its last message — enough while the worker is behind by less.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from services.common.model import Message, Receipt
from services.storage.messages import MessageStore

RECENT_PER_ROOM = 1000
RECENT_TTL_S = 3600
# How long a room's newest stored page is shared by the joins of one pod (see
# ``ReadYourWritesStore.recent``); far below RECENT_TTL_S, which is what makes it safe.
STORED_PAGE_SHARE_S = 1.0


class RecentLog(Protocol):
    async def add(self, message: Message) -> None: ...

    async def remove(self, message: Message) -> None: ...

    async def add_reader(self, receipt: Receipt) -> None: ...

    async def newest(self, room_id: str, limit: int) -> list[Message]: ...

    async def contains(self, room_id: str, message_id: str) -> bool: ...

    async def after(self, room_id: str, since_id: str, limit: int) -> list[Message]: ...

    async def before(self, room_id: str, before_id: str | None, limit: int) -> list[Message]: ...

    async def readers(self, room_id: str, message_ids: Sequence[str]) -> dict[str, list[str]]: ...


def _retrieve(future: asyncio.Future[list[Message]]) -> None:
    if not future.cancelled():
        future.exception()


def merge(primary: list[Message], recent: list[Message]) -> list[Message]:
    """Union by id (the stored copy wins), sorted by id."""
    by_id = {m.id: m for m in recent}
    by_id.update({m.id: m for m in primary})
    return [by_id[i] for i in sorted(by_id)]


class ReadYourWritesStore:
    """A ``MessageStore`` for gateways: reads see the recent log too; writes go to ``inner``."""

    def __init__(
        self, inner: MessageStore, recent: RecentLog, share_s: float = STORED_PAGE_SHARE_S
    ) -> None:
        self.inner = inner
        self.recent_log = recent
        self.share_s = share_s
        self._pages: dict[tuple[str, int], tuple[float, asyncio.Future[list[Message]]]] = {}

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def healthy(self) -> bool:
        return await self.inner.healthy()

    async def write(self, messages: Sequence[Message]) -> None:
        await self.inner.write(messages)

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None:
        await self.inner.write_receipts(receipts)

    async def _with_readers(self, room_id: str, messages: list[Message]) -> list[Message]:
        if not messages:
            return messages
        extra = await self.recent_log.readers(room_id, [m.id for m in messages])
        return [m.with_readers([*m.read_by[1:], *extra.get(m.id, [])]) for m in messages]

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        """The newest ``limit`` messages. A join storm (hundreds of sockets joining one room
        within a second) would read the same page from the store once per socket; instead the
        stored page is read once and shared for ``share_s``. Nothing is missed: a message
        accepted meanwhile is in the recent log (before its ack, kept ``RECENT_TTL_S`` and
        ``RECENT_PER_ROOM`` deep), which is read fresh every time, as are the readers."""
        stored, recent = await asyncio.gather(
            self._stored_page(room_id, limit), self.recent_log.newest(room_id, limit)
        )
        return await self._with_readers(room_id, merge(stored, recent)[-limit:])

    async def _stored_page(self, room_id: str, limit: int) -> list[Message]:
        if self.share_s <= 0:
            return await self.inner.recent(room_id, limit)
        now = time.monotonic()
        key = (room_id, limit)
        shared = self._pages.get(key)
        if (
            shared is None
            or now - shared[0] > self.share_s
            or (shared[1].done() and shared[1].exception() is not None)
        ):
            if len(self._pages) >= 4096:  # forget the stale ones (bounded memory)
                for old in [k for k, (at, _) in self._pages.items() if now - at > self.share_s]:
                    del self._pages[old]
            page = asyncio.ensure_future(self.inner.recent(room_id, limit))
            page.add_done_callback(_retrieve)  # a failure nobody awaited is not "unretrieved"
            shared = (now, page)
            self._pages[key] = shared
        return list(await asyncio.shield(shared[1]))

    async def contains(self, room_id: str, message_id: str) -> bool:
        return await self.recent_log.contains(room_id, message_id) or await self.inner.contains(
            room_id, message_id
        )

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        (stored, more), recent = await asyncio.gather(
            self.inner.after(room_id, since_id, cap),
            self.recent_log.after(room_id, since_id, cap + 1),
        )
        merged = merge(stored, recent)
        return await self._with_readers(room_id, merged[:cap]), more or len(merged) > cap

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        (stored, more), recent = await asyncio.gather(
            self.inner.before(room_id, before_id, limit),
            self.recent_log.before(room_id, before_id, limit + 1),
        )
        merged = merge(stored, recent)
        page = merged[-limit:]
        return await self._with_readers(room_id, page), more or len(merged) > limit


class NoRecentLog:
    """For stores that are written before the ack (SQLite): nothing to merge."""

    async def add(self, message: Message) -> None:
        return None

    async def remove(self, message: Message) -> None:
        return None

    async def add_reader(self, receipt: Receipt) -> None:
        return None

    async def newest(self, room_id: str, limit: int) -> list[Message]:
        return []

    async def contains(self, room_id: str, message_id: str) -> bool:
        return False

    async def after(self, room_id: str, since_id: str, limit: int) -> list[Message]:
        return []

    async def before(self, room_id: str, before_id: str | None, limit: int) -> list[Message]:
        return []

    async def readers(self, room_id: str, message_ids: Sequence[str]) -> dict[str, list[str]]:
        return {}


class MemoryRecentLog:
    """The recent log in one process (unit tests of the accept pipeline): same contract as
    the Redis adapter, without its TTL."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, Message]] = {}
        self._readers: dict[tuple[str, str], list[str]] = {}

    async def add(self, message: Message) -> None:
        self._rooms.setdefault(message.room_id, {})[message.id] = message

    async def remove(self, message: Message) -> None:
        self._rooms.get(message.room_id, {}).pop(message.id, None)

    async def add_reader(self, receipt: Receipt) -> None:
        readers = self._readers.setdefault((receipt.room_id, receipt.message_id), [])
        if receipt.user_id not in readers:
            readers.append(receipt.user_id)

    def _sorted(self, room_id: str) -> list[Message]:
        room = self._rooms.get(room_id, {})
        return [room[i] for i in sorted(room)]

    async def newest(self, room_id: str, limit: int) -> list[Message]:
        return self._sorted(room_id)[-limit:] if limit > 0 else []

    async def contains(self, room_id: str, message_id: str) -> bool:
        return message_id in self._rooms.get(room_id, {})

    async def after(self, room_id: str, since_id: str, limit: int) -> list[Message]:
        return [m for m in self._sorted(room_id) if m.id > since_id][:limit]

    async def before(self, room_id: str, before_id: str | None, limit: int) -> list[Message]:
        older = [m for m in self._sorted(room_id) if before_id is None or m.id < before_id]
        return older[-limit:] if limit > 0 else []

    async def readers(self, room_id: str, message_ids: Sequence[str]) -> dict[str, list[str]]:
        return {i: list(self._readers.get((room_id, i), [])) for i in message_ids}
