"""The accept pipeline's invariants, on the memory adapters (gateway/accept.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.auth import Identity
from services.common.crypto import Cipher
from services.common.errors import Unavailable
from services.common.ids import IdGenerator
from services.common.model import Message, Record
from services.gateway.accept import AcceptPipeline
from services.gateway.dedupe import Deduper
from services.storage.claims import MemoryClaims
from services.storage.recent import MemoryRecentLog

ALICE = Identity("alice", "Alice")


class Log:
    """A durable log whose appends can be held or failed; it records what it holds."""

    def __init__(self, recent: MemoryRecentLog) -> None:
        self.records: list[Record] = []
        self.recent = recent
        self.fail: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.seen_in_recent: list[bool] = []

    async def append(self, record: Record) -> None:
        assert isinstance(record, Message)
        self.seen_in_recent.append(await self.recent.contains(record.room_id, record.id))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.records.append(record)


class Harness:
    def __init__(self, timeout_s: float = 5.0) -> None:
        self.recent = MemoryRecentLog()
        self.log = Log(self.recent)
        self.claims = MemoryClaims()
        self.delivered: list[Message] = []
        self.deliver_error: Exception | None = None
        self.pipeline = AcceptPipeline(
            IdGenerator(),
            self.log,
            self.recent,
            Deduper(self.claims, ttl_s=600, wait_s=0.3),
            Cipher.from_settings("", ""),
            self._deliver,
            timeout_s,
        )

    async def _deliver(self, message: Message) -> None:
        assert message in self.log.records, "delivered before the durable append"
        self.delivered.append(message)
        if self.deliver_error is not None:
            raise self.deliver_error


async def test_ok_only_after_the_durable_append_and_after_the_recent_log():
    h = Harness()
    h.log.gate = asyncio.Event()
    task = asyncio.create_task(h.pipeline.accept(ALICE, "r", "hello"))
    await asyncio.sleep(0.05)
    assert not task.done() and h.delivered == []  # waiting for the log: no ok, no delivery
    assert h.log.seen_in_recent == [True]  # read-your-writes: in the recent log first
    h.log.gate.set()
    accepted = await task
    assert accepted.delivered and [m.id for m in h.log.records] == [accepted.message_id]
    assert [m.id for m in h.delivered] == [accepted.message_id]


async def test_a_failed_append_rolls_back_the_recent_log_and_the_claim():
    h = Harness()
    h.log.fail = Unavailable("kafka down")
    with pytest.raises(Unavailable):
        await h.pipeline.accept(ALICE, "r", "hello", client_msg_id="c1")
    assert await h.recent.newest("r", 10) == [] and h.delivered == []
    assert await h.claims.get(Deduper.key("alice", "c1")) is None  # released
    h.log.fail = None
    retry = await h.pipeline.accept(ALICE, "r", "hello", client_msg_id="c1")
    assert retry.delivered and len(h.log.records) == 1  # the retry starts over and wins


async def test_a_cancelled_append_rolls_back_too():
    h = Harness()
    h.log.gate = asyncio.Event()
    task = asyncio.create_task(h.pipeline.accept(ALICE, "r", "x", client_msg_id="c2"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await h.recent.newest("r", 10) == []
    assert await h.claims.get(Deduper.key("alice", "c2")) is None


async def test_a_retried_client_msg_id_returns_the_first_id_and_is_stored_once():
    h = Harness()
    first = await h.pipeline.accept(ALICE, "r", "once", client_msg_id="c3")
    again = await h.pipeline.accept(ALICE, "r", "once", client_msg_id="c3")
    assert again.message_id == first.message_id and not again.delivered
    assert len(h.log.records) == 1 and len(h.delivered) == 1
    other_user = await h.pipeline.accept(Identity("bob", "Bob"), "r", "once", client_msg_id="c3")
    assert other_user.message_id != first.message_id  # claims are per user


async def test_a_retry_racing_the_first_attempt_waits_for_its_outcome():
    h = Harness()
    h.log.gate = asyncio.Event()
    first = asyncio.create_task(h.pipeline.accept(ALICE, "r", "race", client_msg_id="c4"))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(h.pipeline.accept(ALICE, "r", "race", client_msg_id="c4"))
    await asyncio.sleep(0.02)
    h.log.gate.set()
    a, b = await first, await second
    assert a.message_id == b.message_id and len(h.log.records) == 1


async def test_the_deadline_travels_with_the_message():
    h = Harness(timeout_s=2.5)
    accepted = await h.pipeline.accept(ALICE, "r", "deadline")
    stored = h.log.records[0]
    assert stored.id == accepted.message_id
    assert stored.deadline_ms == stored.created_ms + 2500


async def test_a_failed_delivery_still_acks_ok_because_the_message_is_durable():
    h = Harness()
    h.deliver_error = RuntimeError("redis publish failed")
    accepted = await h.pipeline.accept(ALICE, "r", "stored anyway")
    assert accepted.delivered and len(h.log.records) == 1
