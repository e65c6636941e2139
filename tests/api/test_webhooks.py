"""Webhooks end to end: an API gateway in cluster mode on a topic of its own, the webhook
worker on that topic, and a real local HTTP receiver that fails some deliveries on purpose."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections import defaultdict

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from services.persistence.migrate import ensure_topics
from services.webhooks.signing import verify
from tests.support.procs import Service

from .conftest import API_KEYS, ApiSystem, room, user

pytestmark = pytest.mark.e2e

GOOD_SECRET = "good-" + uuid.uuid4().hex
SLOW_SECRET = "slow-" + uuid.uuid4().hex


class Receiver:
    """Records every POST; answers 500 to every third one AFTER recording it (so the retry
    is a duplicate); ``/slow`` hangs past the worker's timeout."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.count = 0
        self.delay = 0.0  # seconds per /hook request (a slower stream to kill mid-way)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        await asyncio.sleep(self.delay)
        self.count += 1
        self.got.append(
            {
                "body": json.loads(raw),
                "delivery": request.headers["Parley-Delivery"],
                "event": request.headers["Parley-Event"],
                "signed": verify(
                    GOOD_SECRET, request.headers["Parley-Signature"], raw, time.time()
                ),
            }
        )
        return web.Response(status=500 if self.count % 3 == 0 else 204)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/slow", self.slow)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        base = int(os.environ.get("PARLEY_TEST_STACK_PORT_BASE", "8500"))
        for port in [*range(base + 10, base + 20), *range(18700, 18800)]:
            try:
                site = web.TCPSite(self.runner, "127.0.0.1", port)
                await site.start()
                self.port = port
                return
            except OSError:
                continue
        raise RuntimeError("no free receiver port")

    def events(self, rooms: set[str]) -> list[dict]:
        return [g for g in self.got if g["body"]["data"].get("roomId") in rooms]

    def of_users(self, users: set[str]) -> list[dict]:
        return [g for g in self.got if g["body"]["data"].get("userId") in users]


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    assert r.runner is not None
    await r.runner.cleanup()


@pytest.fixture
def hooked(receiver, migrated, engine_env):
    """(the API system, the worker's Service, the worker env, the dead-letter topic)."""
    topic = f"{engine_env['PARLEY_KAFKA_TOPIC']}.wh{uuid.uuid4().hex[:6]}"
    env = {**engine_env, "PARLEY_KAFKA_TOPIC": topic}
    base = f"http://127.0.0.1:{receiver.port}"
    worker_env = {
        **env,
        "PARLEY_WEBHOOKS": f"good|{base}/hook|message.created+message.read|{GOOD_SECRET},"
        f"slow|{base}/slow|message.created|{SLOW_SECRET}",
        "PARLEY_WEBHOOK_GROUP": f"wh-{uuid.uuid4().hex[:8]}",
        "PARLEY_WEBHOOK_MAX_ATTEMPTS": "2",
        "PARLEY_WEBHOOK_BACKOFF_SECONDS": "0.05",
        "PARLEY_WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
        "PARLEY_WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    gateway = Service("gateway", f"wh-gateway-{topic[-6:]}", {**env, "PARLEY_API_KEYS": API_KEYS})
    worker = Service("webhooks", f"webhooks-{topic[-6:]}", worker_env)
    try:
        gateway.start().wait_ready()
        worker.start().wait_ready()
        yield ApiSystem(migrated, [gateway]), worker, topic + ".webhooks-dead"
    finally:
        worker.stop()
        gateway.stop()


async def wait_until(check, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


async def dead_letters(topic: str, bootstrap: str, want: set[str], timeout: float) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(found) < len(want):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if json.loads(envelope["body"])["data"]["id"] in want:
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found


async def test_every_event_arrives_signed_at_least_once_and_a_slow_endpoint_blocks_nothing(
    hooked, receiver, migrated
):
    system, _worker, dead_topic = hooked
    bootstrap = migrated.kafka_bootstrap
    r = room()
    api = system.api("publisher")
    reader_id = user()
    reader = await system.client(reader_id)
    assert (await reader.call("room:join", r))["status"] == "ok"
    ids = [await api.publish(r, f"event {n}") for n in range(10)]
    read = await reader.call("chat:read", {"roomId": r, "messageId": ids[0]})
    assert read["status"] == "ok"
    try:

        def all_arrived() -> bool:
            got = receiver.events({r})
            created = {g["body"]["data"]["id"] for g in got if g["event"] == "message.created"}
            reads = [g for g in got if g["event"] == "message.read"]
            return created == set(ids) and bool(reads)

        assert await wait_until(all_arrived, 60), receiver.events({r})
        # the slow endpoint (each event: 2 attempts of a 1 s timeout) is far behind: it did
        # not hold the good one back
        early = await dead_letters(dead_topic, bootstrap, set(ids), 0.5)
        assert len(early) < len(ids)
        got = receiver.events({r})
        assert all(g["signed"] for g in got)
        by_event: dict[tuple[str, str], set[str]] = defaultdict(set)
        for g in got:
            data = g["body"]["data"]
            key = data.get("id") or f"{data['messageId']}/{data['userId']}"
            by_event[(g["event"], key)].add(g["delivery"])
            assert g["body"]["id"] == g["delivery"]
        assert all(len(d) == 1 for d in by_event.values()), by_event  # duplicates share ids
        assert len(got) > len(by_event)  # the receiver's 500s caused real duplicates
        read_event = next(g for g in got if g["event"] == "message.read")
        assert read_event["body"]["data"] == {
            **read_event["body"]["data"],
            "roomId": r,
            "messageId": ids[0],
            "userId": reader_id,
        }
        # the slow endpoint's events end in the dead-letter topic, in order
        dead = await dead_letters(dead_topic, bootstrap, set(ids[:2]), 60)
        assert {json.loads(d["body"])["data"]["id"] for d in dead} == set(ids[:2])
        assert all(d["endpoint"] == "slow" and d["attempts"] == 2 for d in dead)
    finally:
        await system.close()


async def test_a_sigkill_of_the_worker_mid_stream_loses_nothing(hooked, receiver):
    system, worker, _dead = hooked
    receiver.delay = 0.1
    r = room()
    api = system.api("publisher")
    ids = [await api.publish(r, f"kill {n}") for n in range(30)]
    try:

        def created() -> set[str]:
            return {
                g["body"]["data"]["id"]
                for g in receiver.events({r})
                if g["event"] == "message.created"
            }

        assert await wait_until(lambda: len(created()) >= 3, 60)
        worker.kill()
        assert len(created()) < len(ids)  # killed mid-stream (0.1 s per request, 30 events)
        worker.start().wait_ready()
        assert await wait_until(lambda: created() == set(ids), 90), sorted(set(ids) - created())
    finally:
        await system.close()


@pytest.fixture
async def hooked_people(receiver, migrated, engine_env):
    """A gateway, a presence service and a webhook worker on a topic and Redis prefix of
    their own (so the presence service's offline events are theirs), the topics provisioned
    as migrate does; one endpoint for the presence and membership events."""
    tag = uuid.uuid4().hex[:6]
    topic = f"{engine_env['PARLEY_KAFKA_TOPIC']}.pe{tag}"
    await ensure_topics(dataclasses.replace(migrated, kafka_topic=topic))
    env = {
        **engine_env,
        "PARLEY_KAFKA_TOPIC": topic,
        "PARLEY_REDIS_PREFIX": f"{engine_env['PARLEY_REDIS_PREFIX']}pe{tag}:",
        "PARLEY_PRESENCE_GRACE_SECONDS": "0.5",  # offline comes from the presence service
        "PARLEY_PRESENCE_SWEEP_SECONDS": "0.3",
        "PARLEY_PRESENCE_HEARTBEAT_SECONDS": "1",
        "PARLEY_PRESENCE_TTL_SECONDS": "4",
    }
    events = "presence.online+presence.offline+room.member_joined+room.member_left"
    worker_env = {
        **env,
        "PARLEY_WEBHOOKS": f"people|http://127.0.0.1:{receiver.port}/hook|{events}|{GOOD_SECRET}",
        "PARLEY_WEBHOOK_GROUP": f"wh-{tag}",
        "PARLEY_WEBHOOK_BACKOFF_SECONDS": "0.05",
        "PARLEY_WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
    }
    services = [
        Service("gateway", f"pe-gateway-{tag}", {**env, "PARLEY_API_KEYS": API_KEYS}),
        Service("presence", f"pe-presence-{tag}", env),
        Service("webhooks", f"pe-webhooks-{tag}", worker_env),
    ]
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_ready()
        system = ApiSystem(migrated, services[:1])
        yield system, services[2]
        await system.close()
    finally:
        for service in reversed(services):
            service.stop()


async def test_presence_and_membership_events_arrive_signed_at_least_once_in_order(
    hooked_people, receiver
):
    system, worker = hooked_people
    r, ann, bob = room(), user(), user()
    api = system.api("mover")
    client = await system.client(ann)  # presence.online (the gateway's connect)
    assert (await client.call("room:join", r))["status"] == "ok"  # member_joined, socket
    assert (await client.call("room:join", r))["status"] == "ok"  # already in: nothing
    assert await api.join(r, bob) == 0  # offline: stored; member_joined, api
    assert await api.join(r, bob) == 0  # stored already: nothing
    assert await api.leave(r, bob) == 0  # member_left, api
    assert (await client.call("room:leave", r))["status"] == "ok"  # member_left, socket
    await client.close()  # presence.offline, from the presence service after the grace
    want = [
        ("presence.online", ann, None),
        ("room.member_joined", ann, "socket"),
        ("room.member_joined", bob, "api"),
        ("room.member_left", bob, "api"),
        ("room.member_left", ann, "socket"),
        ("presence.offline", ann, None),
    ]

    def distinct() -> list[dict]:
        seen: dict[str, dict] = {}
        for g in receiver.of_users({ann, bob}):
            seen.setdefault(g["delivery"], g)
        return list(seen.values())

    assert await wait_until(lambda: len(distinct()) >= len(want), 60), receiver.got
    await asyncio.sleep(1)  # nothing more may come (no duplicate transitions)
    got = distinct()
    assert sorted((g["event"], g["body"]["data"]["userId"], g["body"]["data"].get("via"))
                  for g in got) == sorted(want)  # fmt: skip
    every = receiver.of_users({ann, bob})
    assert all(g["signed"] for g in every)
    assert all(g["body"]["id"] == g["delivery"] and g["body"]["type"] == g["event"] for g in every)
    assert len(every) > len(got)  # the receiver's 500s caused duplicates, with the same ids
    for g in got:
        data = g["body"]["data"]
        if g["event"].startswith("room."):
            assert data["roomId"] == r
    # per key order: ann's presence (keyed by user), the room's membership (keyed by room)
    order = [(g["event"], g["body"]["data"]["userId"]) for g in every]
    first = {k: order.index(k) for k in set(order)}
    assert first[("presence.online", ann)] < first[("presence.offline", ann)]
    assert first[("room.member_joined", bob)] < first[("room.member_left", bob)]
    assert first[("room.member_joined", ann)] < first[("room.member_left", ann)]
    # a SIGKILL of the worker, then a restart from the committed offsets: nothing is lost
    worker.kill()
    carl = user()
    assert await api.join(r, carl) == 0
    worker.start().wait_ready()
    assert await wait_until(
        lambda: any(g["event"] == "room.member_joined" for g in receiver.of_users({carl})), 60
    )
