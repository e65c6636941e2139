"""One contract for every ``MessageStore`` adapter; subclasses provide the ``store`` fixture.

Rooms get unique names per test so the suite can share one database.
"""

from __future__ import annotations

import uuid

from services.common.ids import IdGenerator
from services.common.model import Message

DAY = 24 * 3600


def make_messages(room: str, n: int, start: float = 1_795_000_000.0, step: float = 1.0):
    now = [start]
    gen = IdGenerator(clock=lambda: now[0])
    out = []
    for i in range(n):
        message_id, ms = gen.new_id()
        out.append(
            Message(
                id=message_id,
                room_id=room,
                user_id=f"u{i % 3}",
                username="U",
                text=f"m{i}",
                created_ms=ms,
                reply_to=None,
                client_msg_id=None,
            )
        )
        now[0] += step
    return out


def room() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


class MessageStoreContract:
    async def test_write_is_idempotent_and_reads_oldest_first(self, store):
        r = room()
        msgs = make_messages(r, 5)
        await store.write(msgs)
        await store.write(msgs[1:3])  # redelivery
        got = await store.recent(r, 50)
        assert [m.id for m in got] == [m.id for m in msgs]
        assert got[0].text == "m0" and got[0].user_id == "u0"
        assert got[0].created_ms == msgs[0].created_ms

    async def test_recent_returns_the_newest_n(self, store):
        r = room()
        msgs = make_messages(r, 8)
        await store.write(msgs)
        assert [m.id for m in await store.recent(r, 3)] == [m.id for m in msgs[-3:]]
        assert await store.recent(room(), 50) == []

    async def test_after_returns_exactly_the_missed_messages_with_cap(self, store):
        r = room()
        msgs = make_messages(r, 7)
        await store.write(msgs)
        missed, more = await store.after(r, msgs[2].id, 10)
        assert [m.id for m in missed] == [m.id for m in msgs[3:]] and not more
        first, more = await store.after(r, msgs[0].id, 4)
        assert [m.id for m in first] == [m.id for m in msgs[1:5]] and more
        none, more = await store.after(r, msgs[-1].id, 4)
        assert none == [] and not more

    async def test_before_pages_backwards(self, store):
        r = room()
        msgs = make_messages(r, 7)
        await store.write(msgs)
        page, more = await store.before(r, None, 3)
        assert [m.id for m in page] == [m.id for m in msgs[4:]] and more
        page, more = await store.before(r, page[0].id, 3)
        assert [m.id for m in page] == [m.id for m in msgs[1:4]] and more
        page, more = await store.before(r, page[0].id, 3)
        assert [m.id for m in page] == [msgs[0].id] and not more

    async def test_reads_span_time_buckets(self, store):
        r = room()
        msgs = make_messages(r, 6, step=7 * DAY)  # several 10-day buckets, with gaps
        await store.write(msgs)
        assert [m.id for m in await store.recent(r, 4)] == [m.id for m in msgs[2:]]
        after, more = await store.after(r, msgs[0].id, 3)
        assert [m.id for m in after] == [m.id for m in msgs[1:4]] and more
        page, more = await store.before(r, msgs[5].id, 10)
        assert [m.id for m in page] == [m.id for m in msgs[:5]] and not more

    async def test_rooms_are_isolated(self, store):
        a, b = room(), room()
        await store.write(make_messages(a, 2) + make_messages(b, 3))
        assert len(await store.recent(a, 50)) == 2
        assert len(await store.recent(b, 50)) == 3
        assert await store.healthy()

    async def test_receipts_become_read_by_sender_first_once_each(self, store):
        from services.common.model import Receipt

        r = room()
        msgs = make_messages(r, 3, step=9 * DAY)  # receipts in two buckets
        await store.write(msgs)
        receipts = [
            Receipt(r, msgs[0].id, "zed", 10),
            Receipt(r, msgs[0].id, "amy", 11),
            Receipt(r, msgs[2].id, "amy", 12),
            Receipt(r, msgs[2].id, msgs[2].user_id, 13),
        ]
        await store.write_receipts(receipts)
        await store.write_receipts(receipts[:1])  # redelivery
        got = {m.id: m for m in await store.recent(r, 10)}
        assert got[msgs[0].id].read_by[0] == msgs[0].user_id
        assert sorted(got[msgs[0].id].read_by[1:]) == ["amy", "zed"]
        assert got[msgs[1].id].read_by == (msgs[1].user_id,)
        assert got[msgs[2].id].read_by == (msgs[2].user_id, "amy")
        after, _ = await store.after(r, msgs[0].id, 10)
        assert after[-1].read_by == (msgs[2].user_id, "amy")
        page, _ = await store.before(r, None, 10)
        assert page[0].to_wire()["readBy"][0] == msgs[0].user_id

    async def test_contains_is_per_room(self, store):
        r, other = room(), room()
        msgs = make_messages(r, 2, step=11 * DAY)
        await store.write(msgs)
        assert await store.contains(r, msgs[0].id) and await store.contains(r, msgs[1].id)
        assert not await store.contains(other, msgs[0].id)
        assert not await store.contains(r, make_messages(r, 1, start=1_700_000_000.0)[0].id)
