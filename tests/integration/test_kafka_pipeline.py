"""Gateway producer → Kafka → persistence worker → Cassandra, on the real engines."""

import asyncio
import contextlib
import dataclasses
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.common.ids import IdGenerator
from services.common.model import Message
from services.persistence.migrate import ensure_topics
from services.persistence.worker import PersistenceWorker
from services.storage.messages_cassandra import CassandraMessageStore
from services.storage.messages_kafka import KafkaMessageLog

pytestmark = pytest.mark.integration


@pytest.fixture
async def pipeline(migrated):
    """A private topic and group for this test, the producer, the store and a worker."""
    suffix = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        migrated,
        kafka_topic=f"{migrated.kafka_topic}.{suffix}",
        kafka_group=f"{migrated.kafka_group}.{suffix}",
    )
    await ensure_topics(settings)
    log = KafkaMessageLog(settings)
    store = CassandraMessageStore(settings)
    await log.start()
    await store.start()
    worker = PersistenceWorker(settings, store)
    task = asyncio.create_task(worker.run())
    yield settings, log, store
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await log.close()
    await store.close()


async def wait_until(predicate, timeout=30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


def new_messages(room: str, n: int) -> list[Message]:
    gen = IdGenerator()
    out = []
    for i in range(n):
        message_id, ms = gen.new_id()
        out.append(
            Message(
                id=message_id, room_id=room, user_id="u", username="U", text=f"t{i}", created_ms=ms
            )
        )
    return out


async def test_appended_messages_are_stored_once_in_order(pipeline):
    settings, log, store = pipeline
    room = f"pipe-{uuid.uuid4().hex[:8]}"
    messages = new_messages(room, 40)
    for m in messages:
        await log.append(m)
    assert await log.healthy()

    async def all_stored():
        return len(await store.recent(room, 100)) == len(messages)

    assert await wait_until(all_stored), "worker did not store every message"
    stored = await store.recent(room, 100)
    assert [m.id for m in stored] == [m.id for m in messages]
    assert [m.text for m in stored] == [m.text for m in messages]


async def test_poison_record_goes_to_dead_letter_and_does_not_block(pipeline):
    settings, log, store = pipeline
    room = f"poison-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.kafka_topic, b"{not json", key=room.encode())
    finally:
        await producer.stop()
    good = new_messages(room, 3)
    for m in good:
        await log.append(m)

    async def stored():
        return len(await store.recent(room, 10)) == 3

    assert await wait_until(stored), "records after the poison record were not stored"
    consumer = AIOKafkaConsumer(
        settings.kafka_topic + ".dlq",
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert record.value == b"{not json"
    headers = dict(record.headers)
    assert b"not JSON" in headers["reason"]


async def test_message_appended_after_its_deadline_is_not_stored(pipeline):
    """A send the gateway gave up on (acked unavailable) must not appear later in storage."""
    settings, log, store = pipeline
    room = f"late-{uuid.uuid4().hex[:8]}"
    late, on_time = new_messages(room, 2)
    late = dataclasses.replace(late, deadline_ms=late.created_ms - 1)  # already expired
    on_time = dataclasses.replace(on_time, deadline_ms=on_time.created_ms + 60_000)
    await log.append(late)
    await log.append(on_time)

    async def on_time_stored():
        return [m.id for m in await store.recent(room, 10)] == [on_time.id]

    assert await wait_until(on_time_stored)
    await asyncio.sleep(1)
    assert [m.id for m in await store.recent(room, 10)] == [on_time.id]
