"""End-to-end presence across gateway processes on real Redis: on the single Redis and on a
local 3-master Redis Cluster (presence sharded by user, ``tests/support/redis_cluster.py``)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.e2e.conftest import PRESENCE_ENV
from tests.support.client import ChatClient
from tests.support.procs import Service

pytestmark = pytest.mark.e2e


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def ids(users) -> set[str]:
    return {u["userId"] for u in users}


@pytest.fixture(params=["redis", "redis-cluster"])
async def cluster_system(request, cluster):
    system = cluster if request.param == "redis" else request.getfixturevalue("rc_cluster")
    yield system
    await system.close_clients()


async def test_online_list_and_multi_device_offline_across_gateways(cluster_system):
    s = cluster_system
    watcher_user = unique("watcher")
    watcher = await s.client(watcher_user, gateway=1)
    alice = unique("alice")
    phone = await s.client(alice, gateway=0)
    seen = await watcher.wait_for("presence:online", lambda d: d["userId"] == alice)
    assert seen == {"userId": alice, "username": alice}
    listed = await phone.wait_for("presence:list")
    assert {alice, watcher_user} <= ids(listed)
    assert watcher_user in ids(watcher.received("presence:list")[0])

    laptop = await s.client(alice, gateway=1)  # second device: no second announcement
    late = await s.client(unique("late"), gateway=0)
    assert alice in ids(await late.wait_for("presence:list"))
    await phone.close()
    await asyncio.sleep(1.0)
    assert watcher.received("presence:offline", lambda d: d["userId"] == alice) == []
    assert len(watcher.received("presence:online", lambda d: d["userId"] == alice)) == 1
    await laptop.close()
    gone = await watcher.wait_for("presence:offline", lambda d: d["userId"] == alice)
    assert gone["username"] == alice
    fresh = await s.client(unique("fresh"), gateway=1)
    assert alice not in ids(await fresh.wait_for("presence:list"))


async def test_sigkilled_gateway_users_go_offline_within_ttl(cluster_system):
    s = cluster_system
    doomed = Service("gateway", unique("gateway-doomed"), {**s.env, **PRESENCE_ENV})
    doomed.start().wait_ready()
    try:
        watcher = await s.client(unique("watcher"), gateway=0)
        only_there, also_elsewhere = unique("carol"), unique("dave")
        victims = [ChatClient(doomed.url, s.token(u)) for u in (only_there, also_elsewhere)]
        for v in victims:
            await v.connect()
        await s.client(also_elsewhere, gateway=1)
        await watcher.wait_for("presence:online", lambda d: d["userId"] == only_there)
        doomed.kill()
        ttl = float(PRESENCE_ENV["PARLEY_PRESENCE_TTL_SECONDS"])
        started = asyncio.get_running_loop().time()
        gone = await watcher.wait_for(
            "presence:offline", lambda d: d["userId"] == only_there, timeout=ttl + 10
        )
        assert gone["userId"] == only_there
        assert asyncio.get_running_loop().time() - started < ttl + 5
        await asyncio.sleep(1)
        assert watcher.received("presence:offline", lambda d: d["userId"] == also_elsewhere) == []
    finally:
        doomed.kill()


async def test_two_presence_replicas_announce_each_offline_once(cluster_system):
    s = cluster_system
    env = {**s.env, **PRESENCE_ENV}
    replica = Service("presence", unique("presence-replica"), env)
    doomed = Service("gateway", unique("gateway-doomed"), env)
    replica.start()
    doomed.start()
    try:
        await asyncio.to_thread(replica.wait_ready)
        await asyncio.to_thread(doomed.wait_ready)
        watcher = await s.client(unique("watcher"), gateway=0)
        users = [unique("rep") for _ in range(3)]
        victims = [ChatClient(doomed.url, s.token(u)) for u in users]
        for v in victims:
            await v.connect()
        for u in users:
            await watcher.wait_for("presence:online", lambda d, u=u: d["userId"] == u)
        doomed.kill()
        for u in users:
            await watcher.wait_for("presence:offline", lambda d, u=u: d["userId"] == u, timeout=20)
        await asyncio.sleep(3)  # both replicas have swept several times since
        for u in users:
            assert len(watcher.received("presence:offline", lambda d, u=u: d["userId"] == u)) == 1
        async with httpx.AsyncClient() as http:
            leaders = 0
            for svc in (replica, s.others[1]):
                text = (await http.get(svc.url + "/metrics")).text
                leaders += int(float(_metric(text, "parley_presence_leader")))
        assert leaders == 1
    finally:
        doomed.kill()
        replica.stop()


def _metric(text: str, name: str) -> str:
    return next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " "))


async def test_presence_service_restart_loses_nothing(cluster_system):
    s = cluster_system
    presence = s.others[1]
    user = unique("stay")
    await s.client(user, gateway=1)
    presence.kill()
    presence.start()
    await asyncio.to_thread(presence.wait_ready)
    async with httpx.AsyncClient() as http:
        state = (await http.get(f"{presence.url}/presence/{user}")).json()
    assert state["online"] is True and len(state["devices"]) == 1
    late = await s.client(unique("late"), gateway=0)
    assert user in ids(await late.wait_for("presence:list"))


async def test_racing_connects_and_disconnects_across_pods_settle_right(cluster_system):
    s = cluster_system
    watcher = await s.client(unique("watcher"), gateway=0)
    user = unique("racer")
    token = s.token(user)
    for _ in range(25):  # 100 sessions, two at a time on each pod, connected and dropped at once
        clients = [ChatClient(s.gateways[i % 2].url, token) for i in range(4)]
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.close() for c in clients))
    gone = await watcher.wait_for("presence:offline", lambda d: d["userId"] == user, timeout=15)
    assert gone["userId"] == user
    await asyncio.sleep(2)
    assert len(watcher.received("presence:online", lambda d: d["userId"] == user)) == 1
    assert len(watcher.received("presence:offline", lambda d: d["userId"] == user)) == 1
    async with httpx.AsyncClient() as http:
        state = (await http.get(f"{s.others[1].url}/presence/{user}")).json()
    assert state["online"] is False and state["devices"] == []
