"""The Server API on the real cluster: two API gateways (A, B) on Redis, Kafka, Cassandra,
with the shared persistence worker and presence service."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.storage.messages_cassandra import CassandraMessageStore

from .conftest import room, user

pytestmark = pytest.mark.e2e


async def settle() -> None:
    """Time for a duplicate to show up, if one were coming (no timing is asserted)."""
    await asyncio.sleep(0.5)


async def test_a_publish_on_a_reaches_clients_on_a_and_b_once(api_cluster):
    r = room()
    on_a = await api_cluster.client(user(), gateway=0)
    on_b = await api_cluster.client(user(), gateway=1)
    for c in (on_a, on_b):
        assert (await c.call("room:join", r))["status"] == "ok"
    message_id = await api_cluster.api("publisher", gateway=0).publish(r, "from a service")
    for c in (on_a, on_b):
        got = await c.wait_for("chat:message", lambda m: m["id"] == message_id)
        assert got["text"] == "from a service" and got["userId"] == "api:publisher"
    await settle()
    for c in (on_a, on_b):
        assert len(c.received("chat:message", lambda m: m["id"] == message_id)) == 1


async def test_a_server_side_join_of_a_user_on_b_delivers_there_and_lets_them_post(api_cluster):
    r = room()
    watcher = await api_cluster.client(user(), gateway=0)
    assert (await watcher.call("room:join", r))["status"] == "ok"
    earlier = await api_cluster.api("publisher").publish(r, "before the join")
    joiner_id = user()
    joiner = await api_cluster.client(joiner_id, gateway=1)  # only on B, never joined itself
    refused = await joiner.call("chat:message", {"roomId": r, "text": "too early"})
    assert refused["status"] == "error" and refused["code"] == "forbidden"

    assert await api_cluster.api("mover", gateway=0).join(r, joiner_id) == 1  # through A
    history = await joiner.wait_for("room:history", lambda h: h["roomId"] == r)
    assert earlier in [m["id"] for m in history["messages"]]
    joined = await watcher.wait_for("room:user-joined", lambda j: j["roomId"] == r)
    assert joined["userId"] == joiner_id

    next_id = await api_cluster.api("publisher", gateway=0).publish(r, "after the join")
    await joiner.wait_for("chat:message", lambda m: m["id"] == next_id)  # B delivers it
    ack = await joiner.call("chat:message", {"roomId": r, "text": "hello from B"})
    assert ack["status"] == "ok"
    await watcher.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])

    assert await api_cluster.api("mover", gateway=1).leave(r, joiner_id) == 0
    left = await watcher.wait_for("room:user-left", lambda e: e["roomId"] == r)
    assert left["userId"] == joiner_id
    after_leave = await api_cluster.api("publisher").publish(r, "after the leave")
    await watcher.wait_for("chat:message", lambda m: m["id"] == after_leave)
    await settle()
    assert not joiner.received("chat:message", lambda m: m["id"] == after_leave)
    refused = await joiner.call("chat:message", {"roomId": r, "text": "gone"})
    assert refused["code"] == "forbidden"


async def test_members_and_presence_add_up_across_both_pods(api_cluster):
    r = room()
    both, one = user(), user()
    await api_cluster.client(both, gateway=0)
    await api_cluster.client(both, gateway=1)
    await api_cluster.client(one, gateway=1)
    mover = api_cluster.api("mover")
    assert await mover.join(r, both) == 2
    assert await mover.join(r, one) == 1
    members = {m.user_id: m for m in await api_cluster.api("reader", gateway=1).members(r)}
    assert set(members) == {both, one}
    assert members[both].sockets == 2 and members[one].sockets == 1
    assert all(m.online for m in members.values())
    reader = api_cluster.api("reader")
    presence = await reader.presence(both)
    assert presence.online and presence.sockets == 2
    nobody = await reader.presence(user())
    assert not nobody.online and nobody.sockets == 0


async def test_client_msg_id_retries_return_the_first_id_and_store_once(api_cluster, migrated):
    r = room()
    publisher = api_cluster.api("publisher", gateway=0)
    first = await publisher.publish(r, "once", client_msg_id="retry-1")
    again = await api_cluster.api("publisher", gateway=1).publish(
        r, "once", client_msg_id="retry-1"
    )
    assert again == first
    store = CassandraMessageStore(migrated)
    await store.start()
    try:
        for _ in range(100):  # the worker persists from Kafka
            stored = await store.recent(r, 10)
            if stored:
                break
            await asyncio.sleep(0.2)
        await settle()
        stored = await store.recent(r, 10)
    finally:
        await store.close()
    assert [m.id for m in stored] == [first]
    messages, has_more = await api_cluster.api("reader").history(r)
    assert [m["id"] for m in messages] == [first] and not has_more


async def test_disconnect_closes_the_users_sockets_on_every_pod(api_cluster):
    victim = user()
    sockets = [
        await api_cluster.client(victim, gateway=0),
        await api_cluster.client(victim, gateway=1),
    ]
    assert await api_cluster.api("root", gateway=1).disconnect(victim) == 2
    for c in sockets:
        for _ in range(100):
            if not c.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not c.sio.connected
    assert not (await api_cluster.api("reader").presence(victim)).online


async def test_an_api_message_acked_201_survives_a_sigkill_of_the_persistence_worker(
    migrated, engine_env
):
    """A gateway and a persistence worker of their own (own topic and group, the run's
    keyspace): the worker is SIGKILLed right after the 201s, a new one stores them all."""
    from tests.support.procs import Service

    from .conftest import API_KEYS, ApiSystem

    tag = uuid.uuid4().hex[:6]
    env = {
        **engine_env,
        "PARLEY_KAFKA_TOPIC": f"{engine_env['PARLEY_KAFKA_TOPIC']}.k{tag}",
        "PARLEY_KAFKA_GROUP": f"{engine_env['PARLEY_KAFKA_GROUP']}-k{tag}",
    }
    gateway = Service("gateway", f"kill-gateway-{tag}", {**env, "PARLEY_API_KEYS": API_KEYS})
    worker = Service("persistence", f"kill-persistence-{tag}", env)
    system = ApiSystem(migrated, [gateway])
    store = CassandraMessageStore(migrated)
    try:
        gateway.start()
        worker.start()
        gateway.wait_ready()
        worker.wait_ready()
        await store.start()
        r = room()
        api = system.api("publisher")
        ids = [await api.publish(r, f"durable {n}") for n in range(20)]
        worker.kill()
        worker.start().wait_ready()
        for _ in range(150):
            stored = [m.id for m in await store.recent(r, 50)]
            if len(stored) == len(ids):
                break
            await asyncio.sleep(0.2)
        assert sorted(stored) == sorted(ids)
    finally:
        await system.close()
        await store.close()
        worker.stop()
        gateway.stop()
