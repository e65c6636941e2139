"""ReadYourWritesStore shares a room's newest stored page among the joins of a storm, and
still shows every accepted message and reader (storage/recent.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.ids import IdGenerator
from services.common.model import Message, Receipt
from services.storage.messages import MemoryMessageStore
from services.storage.recent import MemoryRecentLog, ReadYourWritesStore

ids = IdGenerator()


def message(room: str, text: str) -> Message:
    mid, at = ids.new_id()
    return Message(id=mid, room_id=room, user_id="u", username="u", text=text, created_ms=at)


class CountingStore(MemoryMessageStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.fail = False

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        self.reads += 1
        await asyncio.sleep(0.01)  # a store round trip: the storm's reads overlap it
        if self.fail:
            raise ConnectionError("store down")
        return await super().recent(room_id, limit)


async def test_a_join_storm_reads_the_stored_page_once_and_misses_nothing():
    inner, log = CountingStore(), MemoryRecentLog()
    store = ReadYourWritesStore(inner, log, share_s=60)
    stored = message("r", "stored")
    await inner.write([stored])
    pages = await asyncio.gather(*(store.recent("r", 50) for _ in range(200)))
    assert inner.reads == 1
    assert all([m.text for m in page] == ["stored"] for page in pages)

    late = message("r", "accepted after the page was read")  # in the recent log, as on accept
    await log.add(late)
    await log.add_reader(Receipt(room_id="r", message_id=stored.id, user_id="reader", read_ms=1))
    page = await store.recent("r", 50)
    assert inner.reads == 1  # still shared ...
    assert [m.text for m in page] == ["stored", late.text]  # ... yet the new message is there
    assert page[0].read_by == ("u", "reader")  # and so is the new reader
    assert len(await store.recent("r", 1)) == 1 and inner.reads == 2  # another page size


async def test_the_shared_page_expires_and_a_failure_is_not_shared_later():
    inner, log = CountingStore(), MemoryRecentLog()
    store = ReadYourWritesStore(inner, log, share_s=0.05)
    await store.recent("r", 50)
    await asyncio.sleep(0.1)
    await store.recent("r", 50)
    assert inner.reads == 2

    inner.fail = True
    await asyncio.sleep(0.1)
    with pytest.raises(ConnectionError):
        await store.recent("r", 50)
    inner.fail = False
    assert await store.recent("r", 50) == []  # read again, not the remembered failure
    assert inner.reads == 4
