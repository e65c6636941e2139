"""The Redis recent log merged into reads (read-your-writes), on real Redis (single and
cluster)."""

import dataclasses
import uuid

import pytest

from services.common.model import Receipt
from services.storage.messages import MemoryMessageStore
from services.storage.recent import ReadYourWritesStore
from services.storage.recent_redis import RedisRecentLog
from tests.contracts.store_contract import make_messages

pytestmark = pytest.mark.integration


@pytest.fixture
async def parts(engine_settings, redis_either):
    recent = RedisRecentLog(redis_either, engine_settings.redis_prefix)
    inner = MemoryMessageStore()
    return inner, recent, ReadYourWritesStore(inner, recent)


async def test_reads_union_stored_and_recent_once_each(parts):
    inner, recent, store = parts
    room = f"ryw-{uuid.uuid4().hex[:8]}"
    msgs = make_messages(room, 8)
    await inner.write(msgs[:5])  # the worker stored the first five ...
    for m in msgs[3:]:  # ... the gateway logged the last five (two overlap)
        await recent.add(m)
    assert [m.id for m in await store.recent(room, 50)] == [m.id for m in msgs]
    assert [m.id for m in await store.recent(room, 3)] == [m.id for m in msgs[5:]]
    after, more = await store.after(room, msgs[1].id, 4)
    assert [m.id for m in after] == [m.id for m in msgs[2:6]] and more
    after, more = await store.after(room, msgs[4].id, 10)
    assert [m.id for m in after] == [m.id for m in msgs[5:]] and not more
    page, more = await store.before(room, msgs[7].id, 3)
    assert [m.id for m in page] == [m.id for m in msgs[4:7]] and more
    page, more = await store.before(room, msgs[2].id, 3)
    assert [m.id for m in page] == [m.id for m in msgs[:2]] and not more


async def test_withdrawn_message_disappears_and_readers_merge(parts):
    inner, recent, store = parts
    room = f"ryw-{uuid.uuid4().hex[:8]}"
    kept, refused = make_messages(room, 2)
    kept = dataclasses.replace(kept, attachment={"id": "f", "url": "/files/f"})
    await recent.add(kept)
    await recent.add(refused)
    await recent.remove(refused)
    await recent.add_reader(Receipt(room, kept.id, "reader", 1))
    assert await store.contains(room, kept.id) and not await store.contains(room, refused.id)
    assert not await store.contains("elsewhere", kept.id)
    (got,) = await store.recent(room, 10)
    assert got.id == kept.id and got.read_by == (kept.user_id, "reader")
    assert got.attachment == {"id": "f", "url": "/files/f"}
