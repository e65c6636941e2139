"""The persistence worker SIGKILLed in the middle of a message stream, then restarted: every
acked message ends up in Cassandra exactly once, and nothing else does.

A private deployment (two gateways, one worker, its own topic and consumer group) so the
worker's counters and the topic's offsets belong to this test alone. The kill is aimed at a
batch write: the worker is frozen (SIGSTOP) while a backlog builds, resumed, and SIGKILLed
40 ms later, usually after it wrote part of the backlog and before it committed. The restarted
worker has the same group, so it resumes from the committed offsets; the rows written past
them (counted in Cassandra before the restart) are redelivered and rewritten onto the same rows.

What is asserted, read from outside the services:
- the topic holds exactly N records (the idempotent producer appended each acked message once);
- Cassandra, read directly, holds exactly the N acked ids in those rooms (none missing, none
  twice, no stray ids), each with its sender and text;
- the kill landed mid-stream: the group had committed fewer than N records when it died;
- the restarted worker's ``parley_persistence_messages_stored_total`` covers everything past
  the committed offsets, so the two lives together stored ≥ N (more when rows were redone;
  the log line reports how many).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import signal
import uuid
from collections import Counter

import pytest

from services.common.auth import issue_token
from services.persistence.migrate import ensure_topics
from tests.support.client import ChatClient
from tests.support.faults import (
    committed_offsets,
    eventually,
    log_end_offsets,
    metrics,
    stored_rows,
)
from tests.support.procs import Service

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

USERS = 30
PER_USER = 10
N = USERS * PER_USER
ROOMS = 3
STREAM_SECONDS = 8.0  # the sends are paced so the stream outlasts the kill and the restart
KILL_AT = 0.4  # kill once this share of the stream is acked (and the worker stored some)
FROZEN_SECONDS = 1.5  # SIGSTOPped this long before the kill, so it has a backlog to write
KILL_DELAY = 0.04  # after SIGCONT: typically mid-write (varies with load; not asserted)
STORED = "parley_persistence_messages_stored_total"
LAG = "parley_persistence_consumer_lag_messages"


@pytest.fixture
async def private_system(migrated, engine_env):
    """Two gateways and a worker on a topic and group of their own (same keyspace)."""
    suffix = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        migrated,
        kafka_topic=f"{migrated.kafka_topic}.kill{suffix}",
        kafka_group=f"{migrated.kafka_group}.kill{suffix}",
    )
    await ensure_topics(settings)
    env = {
        **engine_env,
        "PARLEY_KAFKA_TOPIC": settings.kafka_topic,
        "PARLEY_KAFKA_GROUP": settings.kafka_group,
        "PARLEY_RATE_LIMITS": "chat:message=1000/1",
    }
    gateways = [Service("gateway", f"kill-gateway-{n}-{suffix}", env) for n in ("a", "b")]
    worker = Service("persistence", f"kill-worker-{suffix}", env)
    started = [*gateways, worker]
    try:
        for s in started:
            s.start()
        for s in started:
            await asyncio.to_thread(s.wait_ready)
        yield settings, env, gateways, worker, started
    finally:
        for s in started:
            await asyncio.to_thread(s.stop)


async def test_worker_sigkill_mid_stream_stores_every_acked_message_once(private_system):
    settings, env, gateways, worker, started = private_system
    tag = uuid.uuid4().hex[:6]
    rooms = [f"kill-{tag}-{r}" for r in range(ROOMS)]
    users = [f"killer-{tag}-{u}" for u in range(USERS)]
    clients = [
        ChatClient(gateways[i % len(gateways)].url, issue_token(settings, user))
        for i, user in enumerate(users)
    ]
    acked: dict[str, tuple[str, str, str]] = {}  # id -> (room, user, text)
    refused: list[object] = []
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        for c in clients:
            for room in rooms:
                assert (await c.call("room:join", room))["status"] == "ok"

        async def send_all(i: int, client: ChatClient) -> None:
            await asyncio.sleep(random.uniform(0, STREAM_SECONDS / PER_USER))
            for k in range(PER_USER):
                room = rooms[(i + k) % ROOMS]
                text = f"{users[i]}#{k}"
                ack = await client.call("chat:message", {"roomId": room, "text": text}, timeout=30)
                if ack.get("status") == "ok":
                    acked[ack["messageId"]] = (room, users[i], text)
                else:
                    refused.append(ack)
                await asyncio.sleep(STREAM_SECONDS / PER_USER)

        stream = asyncio.gather(*(send_all(i, c) for i, c in enumerate(clients)))

        # Watch the first worker life until the kill point; its last scrape is a lower bound
        # of what it stored (it may store and even commit more in the instant before SIGKILL).
        first_life = 0.0
        while len(acked) < KILL_AT * N or first_life == 0:
            assert not stream.done(), "the stream ended before the kill point"
            first_life = (await metrics(worker.url)).get(STORED, 0.0)
            await asyncio.sleep(0.02)
        # Freeze it while a backlog builds, let it go and kill it a moment later: most likely
        # in the middle of writing that backlog, after some rows and before the commit.
        worker.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(FROZEN_SECONDS)
        worker.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(KILL_DELAY)
        worker.kill()
        acked_at_kill = len(acked)
        committed_at_kill = sum((await committed_offsets(settings)).values())
        rows_at_kill = len(await stored_rows(settings, rooms))
        log.info(
            "SIGKILL after %d/%d acks; the worker had stored >= %d, committed %d; %d rows "
            "in Cassandra, so %d rows written past the committed offsets will be redelivered",
            acked_at_kill,
            N,
            first_life,
            committed_at_kill,
            rows_at_kill,
            rows_at_kill - committed_at_kill,
        )
        restarted = Service("persistence", f"{worker.name}-restarted", env)
        started.append(restarted)
        restarted.start()

        await stream
        assert refused == [], f"acks not ok: {refused[:5]}"
        assert len(acked) == N
        assert acked_at_kill < N, "the kill was not in the middle of the stream"
        assert committed_at_kill < N, "the group had committed everything before the kill"

        await asyncio.to_thread(restarted.wait_ready)
        after: dict[str, float] = {}

        async def drained() -> bool:
            after.update(await metrics(restarted.url))
            return after.get(STORED, 0) >= N - committed_at_kill and after.get(LAG, 1) == 0

        took = await eventually(drained, 90, "the restarted worker did not drain the topic")
        log.info(
            "restarted worker drained in %.1fs: stored_total %d, lag %d",
            took,
            after[STORED],
            after[LAG],
        )

        # The log: exactly one record per acked message.
        assert sum((await log_end_offsets(settings)).values()) == N

        # Cassandra, directly: exactly the acked ids, once each, nothing else in those rooms.
        rows = await stored_rows(settings, rooms)
        ids = Counter(message_id for _, message_id, _, _ in rows)
        duplicated = {i: n for i, n in ids.items() if n > 1}
        missing = set(acked) - set(ids)
        extra = set(ids) - set(acked)
        assert not missing, f"{len(missing)} acked messages missing, e.g. {sorted(missing)[:3]}"
        assert not duplicated, f"stored twice: {list(duplicated)[:3]}"
        assert not extra, f"ids nobody acked: {sorted(extra)[:3]}"
        assert len(rows) == N
        for room, message_id, user_id, body in rows:
            assert acked[message_id] == (room, user_id, body)

        # The counters: the restarted worker stored everything past the committed offsets,
        # the rows the killed one had written beyond them included (redelivered, rewritten
        # onto the same rows); the killed one had stored at least what it committed.
        second_life = after[STORED]
        assert second_life >= N - committed_at_kill
        assert max(first_life, committed_at_kill) + second_life >= N
        log.info(
            "stored_total: killed worker >= %d, restarted worker %d; %d rows redelivered "
            "and rewritten",
            max(first_life, committed_at_kill),
            second_life,
            rows_at_kill - committed_at_kill,
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
