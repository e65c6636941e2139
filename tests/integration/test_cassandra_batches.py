"""Writes grouped into unlogged batches per Cassandra partition: every row lands once, a batch
is split by rows and by bytes, rewriting (a redelivered Kafka batch) changes nothing."""

from __future__ import annotations

import uuid

import pytest

from services.common.ids import IdGenerator
from services.common.model import Message, Receipt
from services.storage import messages_cassandra as mc
from services.storage.cassandra_io import connect, execute

pytestmark = pytest.mark.integration


def test_chunks_bound_rows_and_bytes():
    rows = [(i,) for i in range(250)]
    chunks = mc._chunks(rows, [10] * 250)
    assert [len(c) for c in chunks] == [mc.BATCH_ROWS, mc.BATCH_ROWS, 50]
    assert [r for c in chunks for r in c] == rows
    big = mc.BATCH_BYTES // 3 + 1
    assert [len(c) for c in mc._chunks(rows[:5], [big] * 5)] == [2, 2, 1]
    assert mc._chunks(rows[:1], [10 * mc.BATCH_BYTES]) == [rows[:1]]  # a huge row goes alone


async def test_batched_write_stores_each_row_once_and_rewrites_idempotently(migrated):
    store = mc.CassandraMessageStore(migrated)
    await store.start()
    ids = IdGenerator()
    rooms = [f"batch-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)]
    # room 0: several batches by row count; room 1: split by bytes; room 2: a lone row
    messages = [
        Message(ids.new_id()[0], rooms[0], "u", "U", f"m{i}", 1_700_000_000_000)
        for i in range(2 * mc.BATCH_ROWS + 7)
    ] + [
        Message(ids.new_id()[0], rooms[1], "u", "U", "é" * 3000, 1_700_000_000_000)
        for _ in range(6)
    ]
    messages.append(Message(ids.new_id()[0], rooms[2], "u", "U", "alone", 1_700_000_000_000))
    try:
        await store.write(messages)
        await store.write(messages[: mc.BATCH_ROWS + 3])  # redelivered part
        receipts = [Receipt(rooms[0], m.id, "reader", 1_700_000_000_001) for m in messages[:5]]
        await store.write_receipts(receipts)
        await store.write_receipts(receipts)
        cluster, session = await connect(migrated, migrated.cassandra_keyspace)
        try:
            for room in rooms:
                want = sorted(m.id for m in messages if m.room_id == room)
                rows = await execute(
                    session,
                    "SELECT message_id FROM messages WHERE room_id = %s AND bucket = %s",
                    (room, mc.bucket_of(want[0])),
                )
                assert sorted(r[0] for r in rows) == want
        finally:
            cluster.shutdown()
        page, more = await store.after(rooms[0], messages[0].id, 1000)
        assert [m.id for m in page] == [m.id for m in messages[1 : 2 * mc.BATCH_ROWS + 7]]
        assert not more
        assert all("reader" in m.read_by for m in page[:4])
        assert (await store.recent(rooms[1], 50))[0].text == "é" * 3000
    finally:
        await store.close()
