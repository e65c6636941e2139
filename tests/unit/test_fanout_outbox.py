"""The fan-out's ordered publisher (gateway/fanout.py): room messages are PUBLISHed in the
order they were handed over, in pipelines, without the emit waiting for Redis; a Redis that
stays away costs bounded memory."""

from __future__ import annotations

import asyncio
import json

from redis.exceptions import ConnectionError as RedisConnectionError

from services.gateway import fanout, metrics
from services.gateway.fanout import FanoutManager


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.commands: list[tuple[str, str]] = []

    def publish(self, channel: str, payload: str) -> None:
        self.commands.append((channel, payload))

    async def execute(self) -> list[int]:
        await self.redis.gate.wait()  # a Redis round trip the test controls
        if self.redis.down:
            raise RedisConnectionError("down")
        self.redis.batches.append(list(self.commands))
        return [1] * len(self.commands)


class FakeRedis:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.batches: list[list[tuple[str, str]]] = []
        self.down = False

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert not transaction
        return FakePipeline(self)


def manager() -> tuple[FanoutManager, FakeRedis]:
    m = FanoutManager("redis://127.0.0.1:1/0", "parley:test")
    m.redis = fake = FakeRedis()  # type: ignore[assignment]
    return m, fake


def texts(batches: list[list[tuple[str, str]]]) -> list[str]:
    return [json.loads(p)["data"][0] for batch in batches for _, p in batch]


async def test_emits_do_not_wait_for_redis_and_go_out_in_order_in_pipelines():
    m, redis = manager()
    for i in range(5):  # returns at once although Redis has not answered anything yet
        await asyncio.wait_for(m.emit("chat:message", f"m{i}", namespace="/chat", room="r"), 1)
    await asyncio.sleep(0)
    for i in range(5, 8):  # handed over while the first pipeline is in flight
        await m.emit("chat:message", f"m{i}", namespace="/chat", room="r")
    redis.gate.set()
    await asyncio.wait_for(m._sender, 1)  # type: ignore[arg-type]
    assert texts(redis.batches) == [f"m{i}" for i in range(8)]
    assert len(redis.batches) == 2  # one round trip for the first five, one for the rest
    assert {channel for batch in redis.batches for channel, _ in batch} == {"parley:test#/chat#r"}


async def test_a_redis_that_stays_away_drops_the_oldest_beyond_the_bound(monkeypatch):
    monkeypatch.setattr(fanout, "OUTBOX_MAX", 3)
    m, redis = manager()
    errors = metrics.REDIS_PUBLISH_ERRORS._value.get()
    redis.down = True
    await m.emit("chat:message", "first", namespace="/chat", room="r")
    await asyncio.sleep(0)  # the first pipeline is in flight (and will fail)
    for i in range(6):
        await m.emit("chat:message", f"later{i}", namespace="/chat", room="r")
    redis.gate.set()
    await asyncio.sleep(0.05)
    redis.down = False
    await m.emit("chat:message", "after", namespace="/chat", room="r")
    await asyncio.wait_for(m._sender, 1)  # type: ignore[arg-type]
    assert texts(redis.batches) == ["after"]  # the failed ones were counted, not kept
    assert m._outbox == []
    # the first (failed), 3 of the 6 later ones dropped unsent (bound 3), the other 3 failed
    assert metrics.REDIS_PUBLISH_ERRORS._value.get() - errors == 7
