"""What only a Redis Cluster can show: where keys land (hash slots), and sharded pub/sub.

Runs against the local 3-master cluster of ``tests/support/redis_cluster.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from redis.asyncio.cluster import RedisCluster

from services.common.fanout_wire import room_channel
from services.common.redis_io import redis_client
from services.gateway.fanout_cluster import ShardedSubscriber
from services.storage.claims_redis import RedisClaims
from services.storage.memberships_redis import RedisMemberships
from services.storage.presence import Session
from services.storage.presence_redis import RedisPresenceStore, shard_of

pytestmark = pytest.mark.integration


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def rc(redis_cluster):
    client = redis_client(redis_cluster, options={"cluster": True})
    assert isinstance(client, RedisCluster)
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_cluster):
    prefix = f"rc{uuid.uuid4().hex[:6]}:"
    presence = RedisPresenceStore(
        redis_cluster, prefix, prefix + "socketio", scope="rooms", redis_options={"cluster": True}
    )
    await presence.start()
    yield presence, prefix
    await presence.close()


async def keys_by_slot(rc: RedisCluster, prefix: str) -> dict[int, set[str]]:
    """Every key under ``prefix`` on every master, grouped by ``CLUSTER KEYSLOT``."""
    found: dict[int, set[str]] = defaultdict(set)
    for node in rc.get_primaries():
        async for key in rc.scan_iter(match=prefix + "*", count=500, target_nodes=node):
            name = key if isinstance(key, str) else key.decode()
            slot = int(await rc.execute_command("CLUSTER KEYSLOT", name, target_nodes=node))
            found[slot].add(name)
    return found


async def test_presence_keys_of_different_users_land_in_different_slots(rc, store):
    presence, prefix = store
    users = [uid("u") for _ in range(40)]
    room = uid("room")
    for n, user in enumerate(users):
        session = Session(user, user, f"sid-{user}", "pod-a")
        await presence.connect(session, 1000 + n)
        await presence.join_room(session, room)
    # a second transition for one user: disconnect, which ends the session and its rooms
    gone = users[0]
    await presence.disconnect(Session(gone, gone, f"sid-{gone}", "pod-a"), 5000)

    slots = await keys_by_slot(rc, prefix)
    assert not any(gone in k for keys in slots.values() for k in keys)  # its keys ended
    user_slot = {}
    for user in users[1:]:
        mine = {s for s, keys in slots.items() for k in keys if user in k}
        assert len(mine) == 1, f"{user}'s keys are spread over slots {mine}"
        user_slot[user] = mine.pop()
        # the slot Redis computes is the one of the user's shard prefix (the hash tag)
        assert user_slot[user] == rc.keyslot(presence.prefix_of(user) + "x")
    assert len(set(user_slot.values())) >= 10, "users are not spread over slots"
    nodes = {rc.get_node_from_key(presence.prefix_of(u) + "x").name for u in users[1:]}
    assert len(nodes) == 3, "presence load does not reach every master"
    # what a transition touches besides the user's own keys lives in the same slot
    for user in users[1:]:
        p = presence.prefix_of(user)
        together = [f"{p}s:{user}", f"{p}online", f"{p}members:{room}", f"{p}rm:{user}:{room}"]
        assert {rc.keyslot(k) for k in together} == {user_slot[user]}
    # the pod registry (heartbeats, epoch) is in the slot of the plain ``{presence}`` tag
    assert rc.keyslot(prefix + "{presence}:pods") == rc.keyslot("presence")
    assert {u.user_id for u in await presence.online_users()} >= set(users[1:])
    assert [m.user_id for m in await presence.room_members(room)] == sorted(users[1:])


async def test_reaping_a_pod_spans_every_shard_and_forgets_the_pod(store):
    presence, _ = store
    pod = uid("pod")
    users = [uid("r") for _ in range(12)]
    assert len({shard_of(u, presence.shards) for u in users}) > 1
    for n, user in enumerate(users):
        await presence.connect(Session(user, user, f"s-{n}", pod), 1000)
    assert pod in await presence.pods()
    gone = await presence.reap_pod(pod, 2000)
    assert sorted(u.user_id for u in gone) == sorted(users)
    assert pod not in await presence.pods()
    assert await presence.counts() == (0, 0)


async def test_a_connect_racing_the_reaper_keeps_its_pod_registered(store):
    presence, prefix = store
    pod = uid("pod")
    await presence.connect(Session(uid("a"), "a", "s1", pod), 1000)
    pods = prefix + "{presence}:pods"
    seen = await presence.redis.zscore(pods, pod)  # what the reaper read before its sweep
    late = uid("late")
    await presence.connect(Session(late, "late", "s2", pod), 5000)  # a sign of life meanwhile
    forget = presence._scripts["forget_pod"]
    assert await forget(keys=[pods], args=[pods, pod, int(seen)]) == 0
    assert (await presence.pods())[pod] == 5000  # still registered, so still reapable
    assert late in {u.user_id for u in await presence.reap_pod(pod, 9000)}
    assert pod not in await presence.pods()


async def test_sharded_subscriber_gets_only_its_rooms_from_every_node(rc, redis_cluster):
    base = f"rc{uuid.uuid4().hex[:6]}:socketio"
    rooms = [uid("room") for _ in range(30)]
    channels = [room_channel(base, "/chat", r) for r in rooms]
    assert len({rc.get_node_from_key(c).name for c in channels}) == 3
    wanted = channels[:20]  # the other 10 are published on, never subscribed
    sub = ShardedSubscriber(rc, {base})
    try:
        await sub.subscribe(base, *wanted)
        confirmed = set()
        while len(confirmed) < len(wanted) + 1:
            message = await sub.get_message(timeout=5)
            assert message is not None, "a subscription was not confirmed"
            assert message["type"] == "subscribe"
            confirmed.add(message["channel"])
        assert confirmed == {base, *wanted}
        for c in channels:
            await rc.spublish(c, c)
        assert await rc.publish(base, "pod-wide") >= 0
        got = []
        while (message := await sub.get_message(timeout=1)) is not None:
            got.append(message)
        assert all(m["type"] == "message" for m in got)
        assert sorted(m["channel"] for m in got) == sorted([base, *wanted])
        await sub.unsubscribe(*wanted[:10])
        await asyncio.sleep(0.2)
        for c in channels:
            await rc.spublish(c, c)
        got = []
        while (message := await sub.get_message(timeout=1)) is not None:
            got.append(message["channel"])
        assert sorted(got) == sorted(wanted[10:])
    finally:
        await sub.aclose()


async def test_a_leave_and_quick_rejoin_is_not_taken_for_a_moved_slot(rc):
    base = f"rc{uuid.uuid4().hex[:6]}:socketio"
    channel = room_channel(base, "/chat", uid("room"))
    sub = ShardedSubscriber(rc, {base})
    try:
        await sub.subscribe(channel)
        await sub.unsubscribe(channel)
        await sub.subscribe(channel)  # before the first SUNSUBSCRIBE was even confirmed
        kinds = [(await sub.get_message(timeout=5) or {}).get("type") for _ in range(2)]
        assert kinds == ["subscribe", "subscribe"]
        await rc.spublish(channel, "still here")
        message = await sub.get_message(timeout=5)  # raises if it was taken for a move
        assert message is not None and message["data"] == b"still here"
    finally:
        await sub.aclose()


async def test_a_lost_node_connection_is_raised_for_a_full_resubscribe(rc):
    base = f"rc{uuid.uuid4().hex[:6]}:socketio"
    channel = room_channel(base, "/chat", uid("room"))
    sub = ShardedSubscriber(rc, {base})
    try:
        await sub.subscribe(channel)
        assert (await sub.get_message(timeout=5) or {}).get("type") == "subscribe"
        node = rc.get_node_from_key(channel)
        killed = 0
        for client in await rc.client_list(target_nodes=node):
            if int(client.get("ssub", 0)) > 0:
                await rc.execute_command("CLIENT KILL", "ID", client["id"], target_nodes=node)
                killed += 1
        assert killed >= 1
        with pytest.raises(Exception):  # noqa: B017 - any error: the listener starts over
            for _ in range(10):
                await sub.get_message(timeout=1)
    finally:
        await sub.aclose()


async def test_claims_transaction_runs_on_the_cluster(rc):
    claims = RedisClaims(rc, f"rc{uuid.uuid4().hex[:6]}:")
    key = uid("cmid")
    assert await claims.put_if_absent(key, "first", 60) is None
    assert await claims.put_if_absent(key, "second", 60) == "first"
    await claims.put(key, "third", 60)
    assert await claims.get(key) == "third"
    await claims.delete(key)
    assert await claims.get(key) is None


async def test_a_fresh_cluster_client_survives_a_burst_of_first_commands(redis_cluster):
    """redis-py 8.1 alone loses a few of these (its seed connection is replaced under them);
    ``redis_io.ReadyCluster`` loads the slot map first."""
    client = redis_client(redis_cluster, options={"cluster": True})
    prefix = f"rc{uuid.uuid4().hex[:6]}:"
    incr = client.register_script("return redis.call('INCR', KEYS[1])")
    try:
        results = await asyncio.gather(
            *(incr(keys=[f"{prefix}{{k{i % 64}}}"]) for i in range(400)),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
    finally:
        await client.aclose()


async def test_stored_memberships_keep_both_indexes_in_one_slot(rc):
    """The port promises atomic add/remove over user → rooms and room → users: one tag."""
    memberships = RedisMemberships(rc, f"rc{uuid.uuid4().hex[:6]}:")
    alice, room = uid("alice"), uid("room")
    assert await memberships.add(alice, "Alice", room) is True
    assert await memberships.add(alice, "Alice", room) is False
    assert await memberships.has(alice, room)
    assert await memberships.rooms(alice) == [room]
    assert await memberships.members(room) == {alice: "Alice"}
    assert await memberships.remove(alice, room) is True
    assert not await memberships.has(alice, room) and await memberships.members(room) == {}
