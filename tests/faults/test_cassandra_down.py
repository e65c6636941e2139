"""Cassandra stopped for real for about a minute while clients keep sending.

- every ``chat:message`` still acks ``ok``: the ack depends on Kafka only;
- history reads (they go to Cassandra) ack ``unavailable`` while it is down;
- the worker's ``/readyz`` answers 503 naming ``cassandra``; it keeps retrying its batch and its
  consumer-lag gauge shows the backlog growing; the gateways' ``/readyz`` stays 200
  ("degraded"), since chat still flows;
- once Cassandra is back the worker drains its backlog (consumer lag back to 0) and every acked
  message is in Cassandra exactly once (read directly);
- the gateways recover without a restart: their driver reconnects and ``chat:history`` works.

Runs after the other suites (``deploy/local/test.sh`` orders the paths) because it restarts
the shared Cassandra. The driver retries a down host every 0.5–5 s (our reconnection policy),
so the gateways read again within seconds of Cassandra's return.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import pytest

from tests.support.client import ChatClient
from tests.support.faults import eventually, infra, metrics, readyz, stored_rows

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

UNAVAILABLE = {"status": "error", "error": "Temporarily unavailable, retry", "code": "unavailable"}
DOWN_SECONDS = 60
SEND_EVERY = 1.5  # per user: under the default 10 messages / 10 s
USERS = 6
STORED = "parley_persistence_messages_stored_total"
LAG = "parley_persistence_consumer_lag_messages"


async def test_cassandra_down_acks_stay_ok_and_backlog_drains(cluster):
    loop = asyncio.get_running_loop()
    worker = next(s for s in cluster.others if s.module == "persistence")
    tag = uuid.uuid4().hex[:6]
    room = f"cass-down-{tag}"
    users = [f"cassie-{tag}-{u}" for u in range(USERS)]
    acked: dict[str, tuple[str, str]] = {}  # id -> (user, text)
    refused: list[object] = []
    sending = True

    async def keep_sending(u: int, client: ChatClient) -> None:
        k = 0
        await asyncio.sleep(u * SEND_EVERY / USERS)
        while sending:
            text = f"{u}#{k}"
            ack = await client.call("chat:message", {"roomId": room, "text": text}, timeout=30)
            if ack.get("status") == "ok":
                acked[ack["messageId"]] = (users[u], text)
            else:
                refused.append(ack)
            k += 1
            await asyncio.sleep(SEND_EVERY)

    async def history(client: ChatClient) -> dict:
        return await client.call("chat:history", {"roomId": room}, timeout=30)

    senders: asyncio.Future | None = None
    try:
        clients = [
            await cluster.client(user, gateway=u % len(cluster.gateways))
            for u, user in enumerate(users)
        ]
        for c in clients:
            assert (await c.call("room:join", room))["status"] == "ok"
        assert (await history(clients[0]))["status"] == "ok"
        stored_before = (await metrics(worker.url)).get(STORED, 0.0)
        senders = asyncio.gather(*(keep_sending(u, c) for u, c in enumerate(clients)))
        await asyncio.sleep(3)

        await asyncio.to_thread(infra, "down", "cassandra")
        down_at = loop.time()
        acked_at_down = len(acked)
        try:

            async def worker_unready() -> bool:
                return await readyz(worker.url) == 503

            took = await eventually(worker_unready, 30, "worker /readyz did not fail")
            log.info("worker /readyz 503 %.1fs after Cassandra stopped", took)
            for gateway, client in zip(cluster.gateways, clients, strict=False):
                assert await history(client) == UNAVAILABLE, gateway.name
                # chat still flows, so the gateway stays in rotation, reported "degraded"
                assert await readyz(gateway.url) == 200, gateway.name
            lag_during = []
            while loop.time() - down_at < DOWN_SECONDS:
                assert not senders.done(), senders.exception()
                lag_during.append((await metrics(worker.url)).get(LAG))
                await asyncio.sleep(5)
            assert await history(clients[-1]) == UNAVAILABLE
            assert (await readyz(worker.url)) == 503
            acked_while_down = len(acked) - acked_at_down
            log.info(
                "%d messages acked ok while Cassandra was down; worker lag gauge: %s",
                acked_while_down,
                lag_during,
            )
            assert acked_while_down >= USERS * (DOWN_SECONDS / SEND_EVERY) * 0.5
            assert refused == [], f"acks not ok while Cassandra was down: {refused[:3]}"
        finally:
            await asyncio.to_thread(infra, "up", "cassandra", attempts=3)
        up_at = loop.time()
        log.info("Cassandra back after %.0fs down", up_at - down_at)

        # The gateways reconnect by themselves (no restart): history works on each of them.
        for gateway, client in zip(cluster.gateways, clients, strict=False):

            async def reads_again(client: ChatClient = client) -> bool:
                return (await history(client))["status"] == "ok"

            took = await eventually(reads_again, 180, f"{gateway.name}: history", every=1)
            log.info("%s: chat:history ok %.1fs after Cassandra was back", gateway.name, took)
        await asyncio.sleep(2)
        sending = False
        await senders
        assert refused == [], f"acks not ok: {refused[:3]}"

        async def drained() -> bool:
            m = await metrics(worker.url)
            return m.get(LAG) == 0 and m.get(STORED, 0) - stored_before >= len(acked)

        took = await eventually(drained, 60, "the worker did not drain its backlog")
        log.info("worker drained %.1fs after the senders stopped", took)
        assert await readyz(worker.url) == 200

        rows = await stored_rows(cluster.settings, [room])
        ids = Counter(message_id for _, message_id, _, _ in rows)
        assert set(ids) == set(acked), (
            f"missing {len(set(acked) - set(ids))}, unexpected {len(set(ids) - set(acked))}"
        )
        assert max(ids.values()) == 1 and len(rows) == len(acked)
        for _, message_id, user_id, body in rows:
            assert acked[message_id] == (user_id, body)
        page = await history(clients[0])
        assert page["status"] == "ok"
        assert [m["id"] for m in page["messages"]] == sorted(acked)[-len(page["messages"]) :]
        log.info("%d messages acked, stored exactly once", len(acked))
        assert any(lag_during), (  # the lag gauge must show the backlog while the store is down
            f"{LAG} stayed {lag_during[0]} during the outage while {acked_while_down} "
            "messages waited in Kafka"
        )
    finally:
        sending = False
        if senders is not None:
            await asyncio.gather(senders, return_exceptions=True)
        await cluster.close_clients()
